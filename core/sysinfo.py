"""What the machine offers, read without importing torch (the app's sidebar paints before torch loads).

GPUs are read through NVML (`pynvml`, the `nvidia-ml-py` package) when it is installed and the driver answers:
one library call per figure, opened once per process. Otherwise, or when an NVML query fails, through
`nvidia-smi` as a subprocess, as before.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from dataclasses import dataclass

MB = 2**20


@dataclass
class GpuStatus:
    index: int
    name: str
    memory_used_mb: float
    memory_total_mb: float
    utilisation_pct: float | None


class Nvml:
    """This process's NVML session: `library()` is the initialised `pynvml` module, or None where it is not
    installed or the driver does not answer (decided once; `forget()` lets the next call try again)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._library = None
        self._tried = False

    def library(self):
        with self._lock:
            if not self._tried:
                self._tried = True
                try:
                    import pynvml
                    pynvml.nvmlInit()
                    self._library = pynvml
                except Exception:  # not installed, no driver, no GPU: nvidia-smi or nothing
                    self._library = None
            return self._library

    def forget(self) -> None:
        with self._lock:
            self._library, self._tried = None, False


NVML = Nvml()


def _text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _nvml_gpus(nvml) -> list[GpuStatus]:
    result = []
    for index in range(nvml.nvmlDeviceGetCount()):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        memory = nvml.nvmlDeviceGetMemoryInfo(handle)
        result.append(GpuStatus(index, _text(nvml.nvmlDeviceGetName(handle)), memory.used / MB, memory.total / MB,
                                utilisation(handle)))
    return result


def utilisation(handle) -> float | None:
    """Percent of the last sample period in which a kernel ran on the GPU behind an NVML `handle`; None when
    NVML cannot say (some virtual GPUs and MIG slices)."""
    nvml = NVML.library()
    if nvml is None or handle is None:
        return None
    try:
        return float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
    except Exception:
        return None


def nvml_handle(*, uuid: str | None = None, index: int | None = None):
    """NVML's handle of one GPU, by its UUID (as torch reports it, with or without "GPU-") or by NVML's own
    index; None without NVML or when no GPU matches."""
    nvml = NVML.library()
    if nvml is None:
        return None
    try:
        if uuid:
            uuid = str(uuid)
            return nvml.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith(("GPU-", "MIG-")) else "GPU-" + uuid)
        if index is not None:
            return nvml.nvmlDeviceGetHandleByIndex(int(index))
    except Exception:
        return None
    return None


def gpus() -> list[GpuStatus]:
    """NVIDIA GPUs as NVML (or else nvidia-smi) reports them; an empty list when there is none (or no driver)."""
    nvml = NVML.library()
    if nvml is not None:
        try:
            return _nvml_gpus(nvml)
        except Exception:  # a GPU fell off the bus, a driver reload: ask nvidia-smi this time
            pass
    return _smi_gpus()


def _smi_gpus() -> list[GpuStatus]:
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index,name,memory.used,memory.total,utilization.gpu",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=3)
    except (OSError, subprocess.TimeoutExpired):
        return []
    result = []
    for line in out.stdout.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 5:
            continue
        util = float(parts[4]) if parts[4].replace(".", "", 1).isdigit() else None
        try:
            result.append(GpuStatus(int(parts[0]), parts[1], float(parts[2]), float(parts[3]), util))
        except ValueError:  # "[N/A]" memory on some virtual GPUs
            continue
    return result


def cpu_summary() -> str:
    threads = os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return f"CPU, {threads} threads" + (f" (load {load:.1f})" if load is not None else "")
