"""GPU memory and use on the pages: a CUDA run's live view shows its memory tile and chart panels (a CPU run
shows neither), and the sidebar draws each GPU's memory bar and utilisation from NVML (a fake pynvml here)."""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import pytest

from conftest import open_page
from core import jobs, sysinfo
from core.presets import preset
from core.store import RunStore

GIB = 2**30


def recorded_run(*, gpu: bool) -> str:
    """A cancelled run with 10 log rows as a worker writes them; with the GPU keys of core.engine.device_stats."""
    run_id = jobs.create(preset("digits-mlp"))
    store = RunStore()
    store.mark_running(run_id, pid=1, device="cuda:0 (Fake GPU, 80 GiB)" if gpu else "cpu (8 threads)", versions={})
    rows = []
    for index in range(1, 11):
        step = 5 * index
        values = {"train_loss": 2.0 / index, "train_acc": 0.08 * index, "lr": 0.01, "samples_per_s": 5000.0}
        if gpu:
            values |= {"gpu_mem_alloc_mb": 3000.0 + index, "gpu_mem_reserved_mb": 4096.0, "gpu_mem_peak_mb": 3500.0,
                       "gpu_util_pct": 60.0 + index}
            if index == 1:
                values["gpu_mem_total_mb"] = 81920.0
        rows += [(run_id, step, step / 50, key, value, 0.0) for key, value in values.items()]
    store.log_metrics(rows)
    store.finish(run_id, "cancelled")
    return run_id


def chart_text(at) -> str:
    return "\n".join(chart.proto.spec for chart in at.get("plotly_chart"))


def panel_titles(at) -> set[str]:
    titles = set()
    for chart in at.get("plotly_chart"):
        layout = json.loads(chart.proto.spec)["layout"]
        titles |= {a["text"] for a in layout.get("annotations", [])}
    return titles


def test_a_cuda_runs_live_view_shows_its_gpu_memory_and_use(lab_home):
    run_id = recorded_run(gpu=True)
    at = open_page("app_pages/train.py", run=run_id)
    [tile] = [m for m in at.metric if m.label == "GPU memory"]
    assert tile.value == "2.9 GiB"  # the last row's allocated memory (3,010 MB)
    assert tile.proto.help == "allocated now, of 80.0 GiB; reserved 4.0 GiB, peak 3.4 GiB, 70% busy"
    titles = panel_titles(at)
    assert {"GPU memory (MB)", "GPU utilisation (%)", "Samples / s"} <= titles
    assert "total 81,920 MB" in titles  # the device's size drawn as a line on the memory panel
    spec = chart_text(at)
    for name in ("GPU memory allocated (MB)", "GPU memory reserved (MB)", "GPU memory peak (MB)"):
        assert name in spec


def test_a_cpu_runs_live_view_has_no_gpu_section(lab_home):
    at = open_page("app_pages/train.py", run=recorded_run(gpu=False))
    assert "Samples / s" in panel_titles(at)  # the chart is there...
    assert not [m for m in at.metric if "GPU" in m.label]  # ...with no GPU tile
    assert "GPU" not in chart_text(at)


def test_the_gpu_section_in_chinese(lab_home):
    at = open_page("app_pages/train.py", run=recorded_run(gpu=True), lang="zh")
    [tile] = [m for m in at.metric if m.label == "GPU 显存"]
    assert "共 80.0 GiB" in tile.proto.help and "已预留 4.0 GiB" in tile.proto.help and "70% 占用" in tile.proto.help
    titles = panel_titles(at)
    assert {"GPU 显存（MB）", "GPU 利用率（%）", "总量 81,920 MB"} <= titles
    assert "GPU memory" not in chart_text(at)


@pytest.fixture
def one_fake_gpu(monkeypatch):
    """NVML answers one GPU, 20 of 80 GiB in use and 37 % busy; the sidebar's cached rows are read afresh."""
    from ui.sidebar import device_rows
    handle = object()
    nvml = SimpleNamespace(
        nvmlInit=lambda: None, nvmlDeviceGetCount=lambda: 1, nvmlDeviceGetHandleByIndex=lambda index: handle,
        nvmlDeviceGetName=lambda h: "Fake H200", nvmlDeviceGetUtilizationRates=lambda h: SimpleNamespace(gpu=37),
        nvmlDeviceGetMemoryInfo=lambda h: SimpleNamespace(used=20 * GIB, total=80 * GIB, free=60 * GIB))
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    sysinfo.NVML.forget()
    device_rows.clear()
    yield
    sysinfo.NVML.forget()
    device_rows.clear()


def test_the_sidebar_shows_each_gpus_memory_bar_and_use_from_nvml(lab_home, one_fake_gpu):
    at = open_page("app_pages/home.py")
    [line] = [m.value for m in at.sidebar.markdown if "Fake H200" in m.value]
    assert "GPU 0" in line and "20.0 / 80 GiB" in line and "37% busy" in line
    [bar] = at.sidebar.get("progress")
    assert bar.proto.value == 25  # percent of the memory in use
    chinese = open_page("app_pages/home.py", lang="zh")
    assert any("37% 占用" in m.value for m in chinese.sidebar.markdown)
