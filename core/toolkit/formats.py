"""The export formats (core.toolkit.export): each writer makes its files in a staging folder and measures how far
the export's logits are from PyTorch's on the check batch. `export_run` decides whether that is close enough.

A model that cannot be exported one way is refused with the reason: the layer the exporter was inside when it
failed (found with forward hooks, since the exporters run the model's Python code), the operation it names, and
its first line.
"""

from __future__ import annotations

import functools
import json
import re
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import LabError
from core.paths import storage_error

CHECK_INPUTS = 64  # validation inputs an export is checked on (and the first of them alone, at batch 1)


@dataclass
class Made:
    exporter: str
    checked_with: str
    max_abs_diff: float
    top1_agreement: float
    beside: list[str] = field(default_factory=list)  # more files beside the main one, in the staging folder
    members: list[str] = field(default_factory=list)  # a zip's members


# ---- comparing an export with PyTorch ----------------------------------------------------------------------

def reference_logits(model, batch):
    import torch
    with torch.inference_mode():
        return model(batch).float(), model(batch[:1]).float()  # (N, K), (1, K)


def compare(reference, candidate) -> tuple[float, float]:
    """(largest |difference| (inf for NaN or a wrong shape), fraction of positions with the same argmax over the
    last axis) of two outputs: (N, K) logits of a classifier, (N, T, V) of a language model."""
    import torch
    candidate = torch.as_tensor(candidate).float()
    if candidate.shape != reference.shape:
        return float("inf"), 0.0
    difference = torch.nan_to_num((reference - candidate).abs(), nan=float("inf"))
    largest = float(difference.max()) if difference.numel() else 0.0
    agreement = float((reference.argmax(dim=-1) == candidate.argmax(dim=-1)).float().mean())
    return largest, agreement


def compare_both(model, batch, run) -> tuple[float, float]:
    """Compare `run(inputs)` with the model on the whole batch and on its first input alone (the batch axis is
    dynamic in every export, so both must work)."""
    full, one = reference_logits(model, batch)
    diff_full, agree_full = compare(full, run(batch))
    diff_one, agree_one = compare(one, run(batch[:1]))
    return max(diff_full, diff_one), min(agree_full, agree_one)


# ---- the writers ------------------------------------------------------------------------------------------------

def write_onnx(model, batch, stage: Path, name: str, run, run_model, which: str, spec) -> Made:
    import torch
    path = stage / name
    _need("onnxscript", "ONNX export")
    with _refusal("ONNX", run_model) as where:
        where.watch(model)
        torch.onnx.export(model, (_example(batch),), str(path), dynamo=True, input_names=[spec.input_name],
                          output_names=[spec.output_name], dynamic_shapes=(_dynamic(spec),),
                          external_data=False, optimize=True, verbose=False)
    session, version = onnx_session(path)
    largest, agreement = compare_both(model, batch, lambda inputs: onnx_outputs(session, inputs, spec))
    return Made(exporter=f"torch.onnx.export (torch.export-based), opset {_opset(path)}",
                checked_with=f"onnxruntime {version} (CPU)", max_abs_diff=largest, top1_agreement=agreement)


def write_program(model, batch, stage: Path, name: str, run, run_model, which: str, spec) -> Made:
    """The "torchscript" format: torch.jit is deprecated in torch 2.14, so a torch.export program (.pt2)."""
    import torch
    path = stage / name
    with _refusal("a torch.export program", run_model) as where:
        where.watch(model)
        program = torch.export.export(model, (_example(batch),), dynamic_shapes=(_dynamic(spec),))
        where.watch(None)
        torch.export.save(program, str(path))
        loaded = torch.export.load(str(path)).module()

    def run_loaded(images):
        with torch.no_grad():
            return loaded(images)
    largest, agreement = compare_both(model, batch, run_loaded)
    return Made(exporter="torch.export.export + torch.export.save (.pt2; torch.jit is deprecated in torch 2.14)",
                checked_with=f"torch.export.load, torch {torch.__version__}", max_abs_diff=largest,
                top1_agreement=agreement)


def write_safetensors(model, batch, stage: Path, name: str, run, run_model, which: str, spec) -> Made:
    """The state dict as safetensors (the model card in its metadata too), the card as JSON and Markdown beside
    it; checked by loading the file into a freshly built model: every tensor equal, the same logits."""
    import torch
    from safetensors.torch import load_file, save_file

    from core.tasks import task_spec
    from core.toolkit.model_card import build_card, card_markdown

    path, stem = stage / name, Path(name).stem
    card = build_card(run, run_model, which, spec)
    state = {key: value.detach().cpu().clone().contiguous() for key, value in model.state_dict().items()}
    save_file(state, str(path), metadata={"format": "pt", "lab_card": json.dumps(card)})
    fresh = spec.rebuild(task_spec(run_model.config.task).build_model(run_model.config, run_model.metadata))
    loaded = load_file(str(path))
    fresh.load_state_dict(loaded, strict=True)
    fresh.eval()
    changed = [key for key, value in state.items() if not torch.equal(value, loaded[key])]
    if changed:
        raise LabError(f"the safetensors file of run {run.id} does not reload bit for bit: {', '.join(changed[:5])} "
                       "differ; nothing was written")
    card_json, readme = f"{stem}.card.json", f"{stem}.README.md"
    (stage / card_json).write_text(json.dumps(card, indent=2, ensure_ascii=False), encoding="utf-8")
    (stage / readme).write_text(card_markdown(card), encoding="utf-8")
    largest, agreement = compare_both(model, batch, lambda images: reference_logits(fresh, images)[0])
    from importlib.metadata import version
    return Made(exporter=f"safetensors {version('safetensors')} (state dict, model card in its metadata)",
                checked_with="reloaded into a freshly built model: every tensor equal", max_abs_diff=largest,
                top1_agreement=agreement, beside=[card_json, readme])


def write_bundle(model, batch, stage: Path, name: str, run, run_model, which: str, spec) -> Made:
    """A zip: model.onnx (checked as the ONNX format is), card.json, README.md, requirements.txt and predict.py,
    which classifies a picture with onnxruntime, Pillow and numpy alone."""
    from importlib.metadata import version

    from core.toolkit.model_card import build_card, card_markdown

    made = write_onnx(model, batch, stage, "model.onnx", run, run_model, which, spec)
    card = build_card(run, run_model, which, spec)
    usage = ("## Classify a picture\n\n```\npip install -r requirements.txt\npython predict.py picture.jpg "
             "--top-k 5\n```\n\n`predict.py` needs only onnxruntime, Pillow and numpy. The model was checked with "
             f"{made.checked_with}: largest logit difference from PyTorch {made.max_abs_diff:.3g}, top-1 agreement "
             f"{made.top1_agreement:.0%}.\n")
    needs = "".join(f"{package}=={version(package)}\n" for package in ("onnxruntime", "pillow", "numpy"))
    folder = f"{run.id}-{which}/"
    texts = {"card.json": json.dumps(card, indent=2, ensure_ascii=False), "README.md": card_markdown(card) + usage,
             "classes.txt": "".join(f"{c}\n" for c in card["classes"]), "requirements.txt": needs,
             "predict.py": (Path(__file__).parent / "predict_template.py").read_text(encoding="utf-8")}
    with zipfile.ZipFile(stage / name, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.write(stage / "model.onnx", folder + "model.onnx")
        for member, text in texts.items():
            archive.writestr(folder + member, text)
    (stage / "model.onnx").unlink()
    made.members = [folder + member for member in ("model.onnx", *texts)]
    return made


WRITERS = {"onnx": write_onnx, "torchscript": write_program, "safetensors": write_safetensors,
           "bundle": write_bundle}


# ---- ONNX Runtime -----------------------------------------------------------------------------------------------

def onnx_session(path: Path):
    """(an onnxruntime CPU session of the file, onnxruntime's version), or a LabError saying what is missing."""
    onnxruntime = _need("onnxruntime", "checking an ONNX export")
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: its warnings are for developers
    try:
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # an operator or type ONNX Runtime cannot run
        raise LabError(f"ONNX Runtime cannot load the exported model ({_first_line(exc)}); nothing was written") \
            from None
    return session, onnxruntime.__version__


def onnx_outputs(session, inputs, spec):
    """The session's output for a batch of inputs (e.g. logits (N, K) for images (N, C, S, S) float32)."""
    return session.run([spec.output_name], {spec.input_name: inputs.numpy()})[0]


def _opset(path: Path) -> int | str:
    try:
        import onnx
        model = onnx.load(str(path), load_external_data=False)
        return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    except Exception:  # the file was checked by ONNX Runtime already; the opset is only shown
        return "?"


# ---- helpers ----------------------------------------------------------------------------------------------------

def _example(batch):
    """Two inputs to trace with: one would let the exporter treat the batch axis as the constant 1."""
    import torch
    return batch[:2] if len(batch) >= 2 else torch.cat([batch[:1], batch[:1]])


def _dynamic(spec) -> dict:
    """The input axes left free in the exported graph: the batch, and those the family says vary."""
    import torch
    return {axis: torch.export.Dim.DYNAMIC for axis in (0, *spec.varying_axes)}


def _need(package: str, purpose: str):
    import importlib
    try:
        return importlib.import_module(package)
    except ImportError:
        raise LabError(f"{purpose} needs the {package} package: pip install -r requirements.txt") from None


class _Where:
    """Forward hooks that remember which layer the model was inside: the exporters run its Python code, so when
    one fails, the innermost layer still entered and not yet left is the one it could not take."""

    def __init__(self):
        self.stack: list[str] = []
        self.handles: list = []

    def watch(self, model) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []
        if model is None:
            self.stack = []
            return
        for name, module in model.named_modules():
            label = f"{name} ({type(module).__name__})" if name else type(module).__name__
            enter = functools.partial(self._enter, label, not name)
            self.handles.append(module.register_forward_pre_hook(lambda *_, enter=enter: enter()))
            self.handles.append(module.register_forward_hook(lambda *_: self._leave()))

    def _enter(self, label: str, top: bool) -> None:
        if top:
            self.stack = []  # a new attempt (an exporter may try more than one way)
        self.stack.append(label)

    def _leave(self) -> None:
        if self.stack:
            self.stack.pop()

    def layer(self) -> str | None:
        return self.stack[-1] if self.stack else None


@contextmanager
def _refusal(what: str, run_model):
    """Turn an exporter's failure into one LabError that names the layer, the operation and the reason."""
    where = _Where()
    try:
        yield where
    except LabError:
        raise
    except Exception as exc:
        translated = storage_error(exc)
        if translated is not exc:
            raise translated from None
        chain = _causes(exc)  # the exporters wrap the reason ("step 1/3 failed") around the error that says it
        parts = []
        if where.layer():
            parts.append(f"at layer {where.layer()}")
        operation = re.search(r"\baten[.:]{1,2}[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)?", "\n".join(map(str, chain)))
        if operation:
            parts.append(f"operation {operation.group(0)}")
        reason = _first_line(chain[-1])
        if "data-dependent" in reason:
            reason = f"its code branches on the values in a tensor, which one exported graph cannot do ({reason})"
        raise LabError(f"model '{run_model.config.model.name}' of run {run_model.run_id} cannot be exported as "
                       f"{what}{' (' + ', '.join(parts) + ')' if parts else ''}: {reason}; nothing was written") \
            from None
    finally:
        where.watch(None)  # the hooks go; a failure's layer was read above


def _causes(exc: BaseException) -> list[BaseException]:
    """`exc` and the errors behind it, outermost first (those with a message)."""
    chain, seen = [], set()
    while exc is not None and id(exc) not in seen and len(chain) < 10:
        seen.add(id(exc))
        if str(exc).strip() or not chain:
            chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    return chain


def _first_line(exc: BaseException) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))  # terminal colours
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0][:300]}" if lines else type(exc).__name__
