"""GPU statistics in a CUDA run's log rows (core.engine.device_stats): the keys reach the store at every row,
a CPU run gets none, and a statistics source that fails never stops training."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest
import torch

from conftest import train_in_process
from core import sysinfo
from core.engine.callbacks import Callback, StoreLogger
from core.engine.device_stats import GPU_KEYS, CudaStats, DeviceStats
from core.presets import preset
from core.store import RunStore

MB = 2**20


class FakeSource:
    """Stands for CudaStats: memory grows by 10 MB per read, utilisation 50 %."""

    def __init__(self, device):
        self.device, self.reads, self.total_mb = device, 0, 81_559.0

    def read(self):
        self.reads += 1
        return {"gpu_mem_alloc_mb": 100.0 + 10 * self.reads, "gpu_mem_reserved_mb": 512.0,
                "gpu_mem_peak_mb": 300.0, "gpu_util_pct": 50.0}


def fake_trainer(device: str):
    return SimpleNamespace(device=torch.device(device), step=0, epoch=0, batch_in_epoch=0, steps_per_epoch=10)


def log_rows(callbacks, trainer, rows=3):
    """Calls on_train_log as the trainer does: one metrics dict per row, every callback in order."""
    for callback in callbacks:
        if hasattr(callback, "source_for"):
            callback.on_fit_start(trainer)
    for row in range(rows):
        trainer.step = trainer.batch_in_epoch = 5 * (row + 1)
        metrics = {"train_loss": 1.0, "lr": 0.1, "samples_per_s": 1000.0}
        for callback in callbacks:
            callback.on_train_log(trainer, metrics)


def test_a_cuda_runs_rows_carry_its_memory_and_use_into_the_store(lab_home):
    from core import jobs
    run_id = jobs.create(preset("digits-mlp"))
    store = RunStore()
    sources = []
    stats = DeviceStats(source_for=lambda device: sources.append(FakeSource(device)) or sources[-1])
    logger = StoreLogger(store, run_id)
    log_rows([stats, logger], fake_trainer("cuda:0"))
    logger.buffer.flush()
    frame = store.metrics(run_id)
    for key in GPU_KEYS:
        assert list(frame[frame.key == key].step) == [5, 10, 15], key
    assert list(frame[frame.key == "gpu_mem_alloc_mb"].value) == [110.0, 120.0, 130.0]  # read at each row
    assert list(frame[frame.key == "gpu_mem_total_mb"].value) == [81_559.0]  # the device's size, once
    assert sources[0].device == torch.device("cuda:0") and sources[0].reads == 3


def test_a_cpu_run_logs_nothing_new_and_builds_no_source():
    built = []
    seen: list[dict] = []

    class Keys(Callback):
        def on_train_log(self, trainer, metrics):
            seen.append(dict(metrics))

    log_rows([DeviceStats(source_for=lambda device: built.append(device)), Keys()], fake_trainer("cpu"))
    assert built == [] and len(seen) == 3
    assert all(set(row) == {"train_loss", "lr", "samples_per_s"} for row in seen)


@pytest.mark.parametrize("fails_at", ["build", "read"])
def test_a_failing_source_turns_the_statistics_off_and_the_rows_go_on(fails_at):
    class Broken(FakeSource):
        def __init__(self, device):
            if fails_at == "build":
                raise RuntimeError("no NVML, no CUDA context")
            super().__init__(device)

        def read(self):
            raise RuntimeError("CUDA error: device lost")

    seen: list[dict] = []

    class Keys(Callback):
        def on_train_log(self, trainer, metrics):
            seen.append(dict(metrics))

    stats = DeviceStats(source_for=Broken)
    log_rows([stats, Keys()], fake_trainer("cuda:0"))
    assert len(seen) == 3 and not any(key.startswith("gpu_") for row in seen for key in row)
    assert stats.source is None


def test_cuda_stats_reads_torch_counters_and_nvml_for_the_gpu_the_worker_sees(monkeypatch):
    """The worker holding physical GPU 1 sees it as cuda:0: NVML must be asked about GPU 1 (by UUID, or by the
    visible list when the UUID is unknown to NVML)."""
    props = SimpleNamespace(total_memory=80 * 1024 * MB, uuid="unknown-to-nvml")
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: props)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device: 1024 * MB)
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device: 2048 * MB)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device: 1536 * MB)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    nvml = SimpleNamespace(nvmlInit=lambda: None, nvmlDeviceGetHandleByIndex=lambda index: f"gpu{index}",
                           nvmlDeviceGetHandleByUUID=lambda uuid: (_ for _ in ()).throw(KeyError(uuid)),
                           nvmlDeviceGetUtilizationRates=lambda handle: SimpleNamespace(gpu={"gpu1": 93}[handle]))
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    sysinfo.NVML.forget()
    try:
        stats = CudaStats(torch.device("cuda", 0))
        assert stats.total_mb == 80 * 1024 and stats.handle == "gpu1"
        assert stats.read() == {"gpu_mem_alloc_mb": 1024.0, "gpu_mem_reserved_mb": 2048.0, "gpu_mem_peak_mb": 1536.0,
                                "gpu_util_pct": 93.0}
        monkeypatch.setitem(sys.modules, "pynvml", None)  # no nvidia-ml-py: memory only
        sysinfo.NVML.forget()
        assert set(CudaStats(torch.device("cuda", 0)).read()) == {"gpu_mem_alloc_mb", "gpu_mem_reserved_mb",
                                                                  "gpu_mem_peak_mb"}
    finally:
        sysinfo.NVML.forget()


def test_the_worker_adds_the_statistics_before_its_store_logger_writes(lab_home, monkeypatch):
    """The callbacks a worker trains with: DeviceStats comes before StoreLogger, or its keys would miss the row."""
    import core.jobs.assemble
    from core import jobs
    from core.jobs.runner import execute_run
    captured = []

    def assemble(config, *, callbacks, **kwargs):
        captured.extend(callbacks)
        raise RuntimeError("stop here: only the callbacks are wanted")
    monkeypatch.setattr(core.jobs.assemble, "assemble", assemble)
    run_id = jobs.create(preset("digits-mlp"))
    execute_run(run_id)
    kinds = [type(callback) for callback in captured]
    assert DeviceStats in kinds and kinds.index(DeviceStats) < kinds.index(StoreLogger)


def test_a_cpu_run_trained_by_the_worker_stores_no_gpu_metrics(lab_home):
    run_id = train_in_process(preset("digits-mlp").replace(**{"optim.epochs": 1, "data.limit": 256,
                                                              "log_every": 2, "device": "cpu"}))
    keys = set(RunStore().metric_keys([run_id]))
    assert "train_loss" in keys and not any(key.startswith("gpu_") for key in keys)
