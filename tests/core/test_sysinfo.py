"""core.sysinfo reads GPUs through NVML (a fake pynvml here) and falls back to nvidia-smi when NVML fails."""

from __future__ import annotations

import sys
import types
from types import SimpleNamespace

import pytest

from core import sysinfo

GIB = 2**30


class FakeNvmlError(Exception):
    pass


def fake_pynvml(*, init_fails=False, query_fails=False, util_fails=False):
    """A pynvml with two GPUs: 'Fake A' (20 of 80 GiB used, 37 % busy) and 'Fake B' (1 of 24 GiB, 0 %)."""
    module = types.ModuleType("pynvml")
    module.NVMLError = FakeNvmlError
    calls = {"init": 0, "util": 0}
    boards = [("Fake A", 20 * GIB, 80 * GIB, 37), (b"Fake B", 1 * GIB, 24 * GIB, 0)]

    def init():
        calls["init"] += 1
        if init_fails:
            raise FakeNvmlError("NVML Shared Library Not Found")

    def count():
        if query_fails:
            raise FakeNvmlError("GPU is lost")
        return len(boards)

    def utilisation(handle):
        calls["util"] += 1
        if util_fails:
            raise FakeNvmlError("Not Supported")
        return SimpleNamespace(gpu=boards[handle][3], memory=0)

    module.nvmlInit = init
    module.nvmlDeviceGetCount = count
    module.nvmlDeviceGetHandleByIndex = lambda index: index
    module.nvmlDeviceGetHandleByUUID = lambda uuid: {"GPU-aaaa": 0, "GPU-bbbb": 1}[uuid]
    module.nvmlDeviceGetName = lambda handle: boards[handle][0]
    module.nvmlDeviceGetMemoryInfo = lambda handle: SimpleNamespace(used=boards[handle][1], total=boards[handle][2],
                                                                     free=boards[handle][2] - boards[handle][1])
    module.nvmlDeviceGetUtilizationRates = utilisation
    module.calls = calls
    return module


@pytest.fixture
def nvml(monkeypatch):
    """Installs a fake pynvml (`nvml(**faults)`) and a fake nvidia-smi that answers one GPU, 'Smi GPU'."""
    smi = SimpleNamespace(calls=0)

    def run(*args, **kwargs):
        smi.calls += 1
        return SimpleNamespace(stdout="0, Smi GPU, 512, 16384, 12\n")
    monkeypatch.setattr(sysinfo.shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    monkeypatch.setattr(sysinfo.subprocess, "run", run)

    def install(**faults):
        module = fake_pynvml(**faults)
        monkeypatch.setitem(sys.modules, "pynvml", module)
        sysinfo.NVML.forget()
        return module, smi
    yield install
    sysinfo.NVML.forget()  # the next test (or the app) opens the real library again


def test_gpus_come_from_nvml_with_memory_in_mb_and_utilisation(nvml):
    module, smi = nvml()
    first, second = sysinfo.gpus()
    assert (first.index, first.name, first.memory_used_mb, first.memory_total_mb, first.utilisation_pct) == \
        (0, "Fake A", 20 * 1024, 80 * 1024, 37.0)
    assert (second.name, second.memory_used_mb, second.memory_total_mb, second.utilisation_pct) == \
        ("Fake B", 1024, 24 * 1024, 0.0)  # bytes names decoded
    sysinfo.gpus()
    assert module.calls["init"] == 1  # opened once per process
    assert smi.calls == 0


def test_without_a_working_nvml_nvidia_smi_answers(nvml):
    module, smi = nvml(init_fails=True)
    [gpu] = sysinfo.gpus()
    assert (gpu.name, gpu.memory_used_mb, gpu.memory_total_mb, gpu.utilisation_pct) == ("Smi GPU", 512, 16384, 12)
    sysinfo.gpus()
    assert module.calls["init"] == 1 and smi.calls == 2  # a failed init is not retried on every call


def test_an_nvml_query_that_fails_falls_back_to_nvidia_smi(nvml):
    _, smi = nvml(query_fails=True)
    assert [g.name for g in sysinfo.gpus()] == ["Smi GPU"] and smi.calls == 1


def test_a_gpu_that_cannot_say_its_utilisation_still_reports_its_memory(nvml):
    nvml(util_fails=True)
    gpus = sysinfo.gpus()
    assert [g.utilisation_pct for g in gpus] == [None, None]
    assert [g.memory_used_mb for g in gpus] == [20 * 1024, 1024]


def test_handles_by_uuid_as_torch_writes_it_or_by_index(nvml):
    nvml()
    assert sysinfo.nvml_handle(uuid="bbbb") == 1 and sysinfo.nvml_handle(uuid="GPU-aaaa") == 0
    assert sysinfo.nvml_handle(uuid="cccc") is None  # no such GPU: no handle, no exception
    assert sysinfo.nvml_handle(index=1) == 1
    assert sysinfo.utilisation(sysinfo.nvml_handle(index=0)) == 37.0
    assert sysinfo.utilisation(None) is None


def test_no_nvml_and_no_nvidia_smi_means_no_gpus(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    monkeypatch.setattr(sysinfo.shutil, "which", lambda name: None)
    sysinfo.NVML.forget()
    try:
        assert sysinfo.gpus() == [] and sysinfo.nvml_handle(index=0) is None
    finally:
        sysinfo.NVML.forget()


def test_sysinfo_does_not_import_torch():
    import subprocess
    code = "import sys, core.sysinfo as s; s.gpus(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]))
    assert out.stdout.strip() == "False", out.stderr
