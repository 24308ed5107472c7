"""Choosing the compute device and describing it (for run records and the app's sidebar)."""

from __future__ import annotations

import platform
import threading
from contextlib import contextmanager

import torch

from core.errors import ConfigError


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks cuda, then mps, then cpu; an explicit device that is absent is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device: '{name}' was asked for, but this machine has no usable CUDA GPU; "
                              "use --device cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device: '{name}' does not exist; this machine has "
                              f"{torch.cuda.device_count()} GPU(s): cuda:0..cuda:{torch.cuda.device_count() - 1}")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("device: 'mps' was asked for, but Apple's Metal backend is not available here")
    return device


def slot_name(device: torch.device) -> str:
    """The name of the device for job slots: 'cpu', 'mps' or 'cuda0'."""
    if device.type == "cuda":
        return f"cuda{device.index if device.index is not None else torch.cuda.current_device()}"
    return device.type


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        return f"cuda:{index} ({props.name}, {props.total_memory / 2**30:.0f} GiB)"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type


def library_versions() -> dict[str, str]:
    import torchvision
    versions = {"python": platform.python_version(), "torch": torch.__version__,
                "torchvision": torchvision.__version__}
    if torch.cuda.is_available():
        versions["cuda"] = torch.version.cuda or ""
    return versions


def autocast_context(device: torch.device, amp: str):
    """bf16/fp16 autocast on CUDA; full precision elsewhere (returns a context-manager factory)."""
    from contextlib import nullcontext
    if amp == "off" or device.type != "cuda":
        return nullcontext
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return lambda: torch.autocast(device_type="cuda", dtype=dtype)


def use_fast_kernels(device: torch.device) -> None:
    """On CUDA: let cuDNN time its algorithms for each new shape and keep the fastest (batches keep one shape),
    and let float32 matrix products and convolutions use TF32 (autocast leaves some ops in float32; TF32 keeps
    10 mantissa bits there, as nanoGPT and airbench train). A process-wide setting; a no-op elsewhere."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


_THREADS = threading.RLock()  # re-entrant: a wrapped demo may call a wrapped rollout


@contextmanager
def single_threaded_torch():
    """Run torch on one intra-op thread for the duration (also a decorator). On tensors as small as a
    policy's handful of states or a 2-D GAN, handing each op to a thread pool costs more than the op;
    on a busy machine the pool's threads also wait on each other, which was measured at 60x slower
    (88 s instead of 1.4 s for 100 GAN steps on two shared cores). The lock keeps two sessions of the
    app from restoring each other's setting halfway through."""
    with _THREADS:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(before)
