"""What the machine offers, read without importing torch (the app's sidebar paints before torch loads)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass


@dataclass
class GpuStatus:
    index: int
    name: str
    memory_used_mb: float
    memory_total_mb: float
    utilisation_pct: float | None


def gpus() -> list[GpuStatus]:
    """NVIDIA GPUs as nvidia-smi reports them; an empty list when there is none (or no driver)."""
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
        result.append(GpuStatus(int(parts[0]), parts[1], float(parts[2]), float(parts[3]), util))
    return result


def cpu_summary() -> str:
    threads = os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return f"CPU, {threads} threads" + (f" (load {load:.1f})" if load is not None else "")
