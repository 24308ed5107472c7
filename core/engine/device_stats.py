"""GPU memory and utilisation of the run's device, added to every training log row (CUDA runs only).

The worker trains in its own process, so only it can read its torch.cuda memory statistics; `DeviceStats` puts
them into the row's metrics before the store logger writes it (it must come before StoreLogger in the list):

    gpu_mem_alloc_mb     memory held by tensors now             torch.cuda.memory_allocated
    gpu_mem_reserved_mb  memory the caching allocator holds     torch.cuda.memory_reserved
    gpu_mem_peak_mb      the most ever allocated in this run    torch.cuda.max_memory_allocated
    gpu_util_pct         kernel busy time, all processes        NVML (nvidia-ml-py), when present
    gpu_mem_total_mb     the device's memory (first row of a fit only)

The torch figures are counters the allocator keeps (no device sync); NVML is one driver call per row.
"""

from __future__ import annotations

import os

from core.engine.callbacks import Callback

MB = 2**20
GPU_KEYS = ("gpu_mem_alloc_mb", "gpu_mem_reserved_mb", "gpu_mem_peak_mb", "gpu_util_pct")


class CudaStats:
    """Reads one CUDA device: memory through torch.cuda, utilisation through NVML (looked up once)."""

    def __init__(self, device):
        import torch
        self.cuda, self.device = torch.cuda, device
        props = torch.cuda.get_device_properties(device)
        self.total_mb = props.total_memory / MB
        self.handle = _nvml_handle_of(props, device.index if device.index is not None else torch.cuda.current_device())

    def read(self) -> dict[str, float]:
        stats = {"gpu_mem_alloc_mb": self.cuda.memory_allocated(self.device) / MB,
                 "gpu_mem_reserved_mb": self.cuda.memory_reserved(self.device) / MB,
                 "gpu_mem_peak_mb": self.cuda.max_memory_allocated(self.device) / MB}
        if self.handle is not None:
            from core.sysinfo import utilisation
            busy = utilisation(self.handle)
            if busy is not None:
                stats["gpu_util_pct"] = busy
        return stats


def _nvml_handle_of(props, index: int):
    """NVML numbers every GPU of the machine; torch only those in CUDA_VISIBLE_DEVICES (a worker sees the slot it
    holds as cuda:0). The UUID names the same GPU in both; the visible list is the fallback."""
    from core.sysinfo import nvml_handle
    uuid = getattr(props, "uuid", None)
    handle = nvml_handle(uuid=str(uuid)) if uuid else None
    if handle is None:
        visible = [part.strip() for part in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if part.strip()]
        if not visible:
            handle = nvml_handle(index=index)
        elif index < len(visible) and visible[index].isdigit():
            handle = nvml_handle(index=int(visible[index]))
    return handle


class DeviceStats(Callback):
    """Adds the run's GPU memory (and utilisation) to each training log row; nothing on other devices.

    `source_for(device)` returns an object with `read() -> dict` and `total_mb` (CudaStats by default; tests
    give their own). A source that cannot be built or read turns the callback off: statistics never stop a run.
    """

    def __init__(self, source_for=CudaStats):
        self.source_for = source_for
        self.source = None
        self.total_sent = False

    def on_fit_start(self, trainer):
        self.source, self.total_sent = None, False
        if getattr(trainer.device, "type", None) != "cuda":
            return
        try:
            self.source = self.source_for(trainer.device)
        except Exception:
            self.source = None

    def on_train_log(self, trainer, metrics):
        if self.source is None:
            return
        try:
            stats = self.source.read()
        except Exception:
            self.source = None
            return
        metrics.update(stats)
        if not self.total_sent and getattr(self.source, "total_mb", None):
            metrics["gpu_mem_total_mb"] = float(self.source.total_mb)
            self.total_sent = True
