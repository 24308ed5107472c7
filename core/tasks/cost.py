"""How long a run's steps will take, estimated before launch: the model's training FLOPs per step (counted by
torch's FlopCounterMode on the meta device, so nothing is computed) divided by this device's measured rate.

The rate is measured once per process by timing a few training steps of a small convolutional network on
the device and counting their FLOPs the same way, so it includes the framework's overheads that peak
figures leave out. Expect the right order of magnitude (within about 2x), not a stopwatch: it is shown as
"about" and replaced by the run's own pace once its first steps are logged.
"""

from __future__ import annotations

import time

_RATES: dict[str, float] = {}  # device -> measured FLOP/s


def training_flops_per_step(config) -> float | None:
    """FLOPs of one optimiser step (forward, backward: about 3x the forward), or None when the family does not
    declare its input shape (TaskSpec.example_input) or the model cannot be built from the config."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from core.tasks import task_spec
    spec = task_spec(config.task)
    if spec.example_input is None:
        return None
    try:
        metadata, shape, dtype = spec.example_input(config)
        with torch.device("meta"):
            model = spec.build_model(config, metadata)
            batch = torch.zeros(shape, dtype=dtype)
        with FlopCounterMode(display=False) as counter:
            model(batch)
    except Exception:  # noqa: BLE001  a config that cannot build is validation's to explain
        return None
    return 3.0 * float(counter.get_total_flops())


def device_rate(device) -> float:
    """FLOP/s this device sustains on a small training workload: measured on first use on this machine (1-2 s
    on a small CPU, most of it the first convolution's set-up), then remembered in LAB_HOME/cache/device_rates.json for later processes."""
    key = _machine_key(device)
    if key not in _RATES:
        saved = _saved_rates()
        if isinstance(saved.get(key), (int, float)) and saved[key] > 0:
            _RATES[key] = float(saved[key])
        else:
            _RATES[key] = _measure_rate(device)
            _save_rates({**saved, key: _RATES[key]})
    return _RATES[key]


def _machine_key(device) -> str:
    """The device, as far as its speed goes: its name, the CPU count and threads, torch's version."""
    import os

    import torch
    name = torch.cuda.get_device_name(device) if getattr(device, "type", "") == "cuda" else "cpu"
    return f"{name}|{os.cpu_count()}|{torch.get_num_threads()}|{torch.__version__}"


def _rates_file():
    from core.paths import cache_dir
    return cache_dir() / "device_rates.json"


def _saved_rates() -> dict:
    import json
    try:
        raw = json.loads(_rates_file().read_text())
    except (OSError, ValueError):
        return {}
    return raw if isinstance(raw, dict) else {}


def _save_rates(rates: dict) -> None:
    import json

    from core.errors import LabError
    from core.paths import atomic_write
    try:
        atomic_write(_rates_file(), lambda handle: handle.write(json.dumps(rates).encode()))
    except (OSError, LabError):
        pass  # a read-only home only costs the measurement next time


def seconds_per_step(config) -> float | None:
    """About how many seconds one training step of `config` takes on its device; None if not estimable."""
    flops = training_flops_per_step(config)
    if not flops:
        return None
    from core.engine.devices import resolve_device
    return flops / device_rate(resolve_device(config.device))


def _measure_rate(device) -> float:
    import torch
    from torch import nn
    from torch.utils.flop_counter import FlopCounterMode

    generator = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(64, 10)).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.rand((64, 3, 32, 32), generator=generator).to(device)  # (B, C, H, W)
    y = torch.randint(0, 10, (64,), generator=generator).to(device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    with FlopCounterMode(display=False) as counter:
        step()
    flops = float(counter.get_total_flops())
    step()  # warm-up (allocator, kernels)
    _sync(device)
    started, repeats = time.perf_counter(), 0
    while repeats < 2 or time.perf_counter() - started < 0.1:
        step()
        repeats += 1
    _sync(device)
    return flops * repeats / max(time.perf_counter() - started, 1e-9)


def _sync(device) -> None:
    import torch
    if getattr(device, "type", str(device)) == "cuda":
        torch.cuda.synchronize(device)
