"""How much memory a run will need, estimated before launch, against what its device has.

The estimate is the model's weights, gradients and optimiser state, plus one batch and the activations
autograd keeps for the backward pass: the model is built on torch's meta device (no memory, no weights)
and run once on a meta batch of the run's shape, summing every layer's output. It is a floor, not a
promise (the allocator's caches, workspaces and the data set itself come on top), so a run is refused only
when even the floor does not fit, and warned about when it takes most of what is free.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import ConfigError
from core.data.plan import format_bytes

WARN_SHARE = 0.7  # warn when the estimate takes more than this share of the free memory
_STATE_COPIES = {"adam": 4, "adamw": 4, "sgd": 3}  # weights, gradients and the optimiser's buffers


@dataclass(frozen=True)
class MemoryEstimate:
    weights_bytes: int  # weights, gradients, optimiser state
    batch_bytes: int  # one input batch, as float
    activation_bytes: int  # layer outputs autograd keeps for the backward pass
    available_bytes: int | None  # free on the run's device now (None: unknown)
    device: str

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.batch_bytes + self.activation_bytes

    def describe(self) -> str:
        text = f"about {format_bytes(self.total_bytes)} at least (model {format_bytes(self.weights_bytes)}, " \
               f"batch and activations {format_bytes(self.batch_bytes + self.activation_bytes)})"
        if self.available_bytes:
            text += f" of {format_bytes(self.available_bytes)} free on the {self.device}"
        return text

    @property
    def too_big(self) -> bool:
        return self.available_bytes is not None and self.total_bytes > self.available_bytes

    @property
    def tight(self) -> bool:
        return self.available_bytes is not None and self.total_bytes > WARN_SHARE * self.available_bytes


def estimate_memory(config, device_name: str | None = None) -> MemoryEstimate | None:
    """The estimate for a run of `config` on its device, or None for a family whose input shape is not
    known before its data is loaded (only the image families are estimated today)."""
    from core.tasks import task_spec
    spec = task_spec(config.task)
    if spec.example_input is None:
        return None
    import torch
    from core.engine.devices import resolve_device
    device = resolve_device(device_name or config.device)
    metadata, shape, dtype = spec.example_input(config)
    try:
        with torch.device("meta"):
            model = spec.build_model(config, metadata)
            batch = torch.zeros(shape, dtype=dtype)
    except Exception:  # noqa: BLE001  a model this config cannot build is validation's to explain, not ours
        return None
    kept = [0]

    def count(_module, _inputs, output):
        for tensor in output if isinstance(output, (tuple, list)) else (output,):
            if isinstance(tensor, torch.Tensor) and tensor.requires_grad:
                kept[0] += tensor.numel() * tensor.element_size()

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(count) for m in leaves]
    try:
        model(batch)
    except Exception:  # noqa: BLE001  e.g. an image too small for the model: the run's own error says so
        return None
    finally:
        for handle in handles:
            handle.remove()
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    copies = _STATE_COPIES.get(config.optim.optimizer, 4)
    return MemoryEstimate(weights_bytes=params * copies, batch_bytes=batch.numel() * 4,
                          activation_bytes=kept[0], available_bytes=available_memory(device),
                          device="GPU" if device.type == "cuda" else "computer (RAM)")


def check_memory(config) -> MemoryEstimate | None:
    """The estimate; ConfigError when even it does not fit in what the device has free."""
    estimate = estimate_memory(config)
    problem = refusal(estimate, config)
    if problem:
        raise ConfigError(problem)
    return estimate


def refusal(estimate: MemoryEstimate | None, config) -> str | None:
    """Why a run with this estimate cannot launch (what to lower), or None when it fits."""
    if estimate is None or not estimate.too_big:
        return None
    return (f"this run needs {estimate.describe()}: lower optim.batch_size (e.g. to {smaller_batch(estimate, config)}) "
            "or data.image_size")


def smaller_batch(estimate: MemoryEstimate, config) -> int:
    """A batch size that would fit the free memory (roughly: the batch shrunk by how much the estimate is over)."""
    return max(1, config.optim.batch_size // max(2, int(estimate.total_bytes / max(1, estimate.available_bytes)) + 1))


def available_memory(device) -> int | None:
    """Bytes free now: the GPU's free memory, or the machine's available RAM (Linux's MemAvailable)."""
    if device.type == "cuda":
        import torch
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type != "cpu":
        return None
    from core.data.plan import available_memory as machine_available
    return machine_available()
