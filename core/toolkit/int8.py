"""Post-training int8 quantisation on the CPU with PyTorch's own quantisation (torch.ao.quantization).

- dynamic: Linear, LSTM and GRU weights stored as int8; activations are quantised on the fly per batch,
  so nothing needs calibrating (quantize_dynamic);
- static: weights and activations int8 through FX graph mode (prepare_fx: conv-bn-relu fused, observers
  inserted; a few hundred training images calibrate the observers; convert_fx). It needs a model that
  symbolic tracing can follow, with image-like float inputs; recurrent layers, embeddings and attention
  are refused, naming the layer, because dynamic int8 handles them.

The backend is the first of x86, fbgemm, qnnpack this PyTorch build supports (process-wide setting).
A quantised model is rebuilt for loading by applying the same transform to the float architecture, then
its saved state dict (scales and zero points included) is loaded over it.

torch.ao.quantization is deprecated in favour of torchao, whose CPU int8 path is not a drop-in yet; its
deprecation warnings are silenced here, where it is used on purpose.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from contextlib import contextmanager

import torch
from torch import nn

from core.errors import ModelError

ENGINES = ("x86", "fbgemm", "qnnpack")  # preferred order: x86 (fbgemm + onednn) is the default on Intel/AMD
DYNAMIC_TYPES = (nn.Linear, nn.LSTM, nn.GRU)
# layers FX static quantisation has no int8 kernel for here: (type, the name people know it by)
STATIC_UNSUPPORTED = ((nn.LSTM, "LSTM"), (nn.GRU, "GRU"), (nn.RNN, "RNN"), (nn.Embedding, "Embedding"),
                      (nn.EmbeddingBag, "EmbeddingBag"), (nn.MultiheadAttention, "MultiheadAttention"),
                      (nn.TransformerEncoderLayer, "TransformerEncoderLayer"),
                      (nn.TransformerDecoderLayer, "TransformerDecoderLayer"))


@contextmanager
def _quiet():
    """torch.ao.quantization's deprecation notices and its observers' advice, which a user cannot act on."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.ao\..*")
        yield


def int8_engine() -> str:
    """Select and return the int8 CPU backend, or a ModelError when this PyTorch build has none."""
    supported = torch.backends.quantized.supported_engines
    for engine in ENGINES:
        if engine in supported:
            if torch.backends.quantized.engine != engine:
                torch.backends.quantized.engine = engine
            return engine
    raise ModelError("this PyTorch build has no int8 CPU backend (x86, fbgemm or qnnpack); it has: "
                     + ", ".join(str(e) for e in supported))


def check_dynamic(model: nn.Module, model_name: str) -> None:
    """A ModelError when dynamic int8 would change nothing: no Linear, LSTM or GRU layer."""
    if not any(isinstance(m, DYNAMIC_TYPES) for m in model.modules()):
        raise ModelError(f"dynamic int8 quantises Linear, LSTM and GRU layers, and model '{model_name}' has none; "
                         "use static int8")


def check_static(model: nn.Module, model_name: str) -> None:
    """A ModelError naming the first layer static int8 cannot handle here, and the alternative."""
    for name, module in model.named_modules():
        for kind, label in STATIC_UNSUPPORTED:
            if isinstance(module, kind):
                raise ModelError(f"static int8 does not support {label} here (layer '{name}' of model "
                                 f"'{model_name}'); dynamic int8 does: use --quantize dynamic")


def quantize_dynamic(model: nn.Module) -> nn.Module:
    """A dynamic-int8 copy of a float model in eval mode (the model itself is left as it is)."""
    from torch.ao.quantization import quantize_dynamic as ao_quantize_dynamic
    int8_engine()
    with _quiet():
        return ao_quantize_dynamic(model.eval(), set(DYNAMIC_TYPES), dtype=torch.qint8, inplace=False).eval()


def quantize_static(model: nn.Module, example: torch.Tensor, calibration, model_name: str) -> nn.Module:
    """A static-int8 copy of a float model in eval mode, its observers fed `calibration` (input batches)."""
    prepared = _prepare_static(model, example, model_name)
    with _quiet(), torch.inference_mode():
        seen = 0
        for inputs in calibration:
            prepared(inputs)
            seen += len(inputs)
    if not seen:
        raise ModelError("static int8 needs calibration images, and the run's training split has none")
    quantized = _convert_static(prepared, model_name)
    try:
        with _quiet(), torch.inference_mode():
            quantized(example)
    except (RuntimeError, NotImplementedError) as exc:  # an operation with no int8 kernel on this backend
        raise ModelError(f"static int8 cannot run model '{model_name}' ({_first_line(exc)}); "
                         "use --quantize dynamic") from None
    return quantized


def rebuild_quantized(model: nn.Module, kind: str, example: torch.Tensor, model_name: str) -> nn.Module:
    """The quantised architecture of a float model, ready for the saved state dict (its weights and
    quantisation parameters) to be loaded over it."""
    if kind == "dynamic":
        return quantize_dynamic(model)
    prepared = _prepare_static(model, example, model_name)
    with _quiet(), torch.inference_mode():
        prepared(example)  # any values: the loaded state dict replaces every scale and zero point
    return _convert_static(prepared, model_name)


def portable_state(model: nn.Module) -> dict:
    """The model's state dict in a form torch.load(weights_only=True) accepts: a dynamic-int8 LSTM or GRU
    keeps its weights packed in TorchScript objects, which are swapped here for their int8 weight and float
    bias tensors (`<layer>.weight_ih_l0`, ...), as the layer's own `_weight_bias` gives them."""
    state = model.state_dict()
    for prefix, module in _packed_recurrent(model):
        for key in [k for k in state if k.startswith(prefix + "_all_weight_values.")]:
            del state[key]
        tensors = module._weight_bias()
        state.update({prefix + name: value for part in ("weight", "bias") for name, value in tensors[part].items()})
    return state


def load_portable_state(model: nn.Module, state: dict) -> None:
    """Load what `portable_state` saved into the same (rebuilt) architecture; a RuntimeError when it does
    not fit, as load_state_dict gives."""
    metadata = getattr(state, "_metadata", None)  # each layer's state-dict version: int8 layers need theirs
    state = OrderedDict(state)
    if metadata is not None:
        state._metadata = metadata
    for prefix, module in _packed_recurrent(model):
        names = [k for k in state if k.startswith(prefix) and "." not in k[len(prefix):]
                 and k[len(prefix):].startswith(("weight_", "bias_"))]
        try:
            module.set_weight_bias({k[len(prefix):]: state.pop(k) for k in names})  # packs them again
        except KeyError as exc:
            raise RuntimeError(f"missing recurrent weights {exc} for layer '{prefix.rstrip('.')}'") from None
        for index, packed in enumerate(module._all_weight_values):
            state[f"{prefix}_all_weight_values.{index}.param"] = packed.param
    model.load_state_dict(state)


def _packed_recurrent(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(prefix, layer) of every dynamic-int8 LSTM or GRU in the model."""
    from torch.ao.nn.quantized.dynamic import GRU, LSTM
    return [(f"{name}." if name else "", m) for name, m in model.named_modules() if isinstance(m, (LSTM, GRU))]


def _prepare_static(model: nn.Module, example: torch.Tensor, model_name: str):
    import copy

    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import prepare_fx

    engine = int8_engine()
    try:
        with _quiet():
            return prepare_fx(copy.deepcopy(model).eval(), get_default_qconfig_mapping(engine),
                              example_inputs=(example,))
    except Exception as exc:  # noqa: BLE001  FX tracing fails in many ways; all mean "not this model"
        raise ModelError(f"static int8 cannot trace model '{model_name}' ({_first_line(exc)}); dynamic int8 works "
                         "without tracing: use --quantize dynamic") from None


def _convert_static(prepared, model_name: str) -> nn.Module:
    from torch.ao.quantization.quantize_fx import convert_fx
    try:
        with _quiet():
            return convert_fx(prepared).eval()
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"static int8 cannot convert model '{model_name}' ({_first_line(exc)}); "
                         "use --quantize dynamic") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]
