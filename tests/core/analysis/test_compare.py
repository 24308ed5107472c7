"""The Runs comparison reads full-history statistics and thinned curves from SQLite."""

import numpy as np
import pandas as pd
import pytest

from core.analysis import compare_runs, prime_stride
from core.store import RunStore


@pytest.fixture
def store_with_runs(lab_home):
    store = RunStore()
    rng = np.random.default_rng(1)
    ids = []
    for length in (3000, 40):
        run_id = store.create_run({"data": {"name": "digits"}, "model": {"name": "cnn"}}, name=f"run-{length}")
        steps = np.arange(10, 10 * length + 1, 10)  # logged every 10 steps, as the trainer does
        loss = np.exp(-steps / 5000) + rng.normal(0, 0.01, len(steps))
        loss[len(steps) // 3] = -1.0  # one sharp minimum somewhere in the middle
        store.log_metrics([(run_id, int(s), s / 100, "train_loss", float(v), 1000.0 + s) for s, v in zip(steps, loss)])
        ids.append(run_id)
    return store, ids


def test_statistics_cover_the_full_history_exactly(store_with_runs):
    store, ids = store_with_runs
    result = compare_runs(store, ids, "train_loss", max_points=200)
    full = store.metrics(ids, keys=["train_loss"])
    for run_id in ids:
        rows = full[full.run_id == run_id]
        stats = result.stats.set_index("run_id").loc[run_id]
        assert stats["best"] == rows.value.min() == -1.0 and stats["min"] == rows.value.min()
        assert stats["max"] == rows.value.max() and stats["last"] == rows.value.iloc[-1]
        assert stats["count"] == len(rows)
        assert stats["step_of_best"] == rows.step[rows.value.idxmin()]
        best = result.best.set_index("run_id").loc[run_id]
        assert (best["step"], best["value"]) == (stats["step_of_best"], -1.0)
    assert result.mode == "min"


def test_curves_are_thinned_in_sqlite_and_short_runs_stay_whole(store_with_runs):
    store, ids = store_with_runs
    result = compare_runs(store, ids, "train_loss", max_points=200)
    sizes = result.curves.groupby("run_id").size()
    assert sizes[ids[0]] <= 200 and sizes[ids[0]] >= 100  # 3,000 rows thinned, then LTTB to the budget
    assert sizes[ids[1]] == 40  # short enough to keep every point
    long_curve = result.curves[result.curves.run_id == ids[0]]
    assert long_curve.x.is_monotonic_increasing and long_curve.x.iloc[-1] > 25_000  # spans the whole run


def test_time_axis_and_smoothing(store_with_runs):
    store, ids = store_with_runs
    result = compare_runs(store, ids, "train_loss", x="time", smoothing=0.9, max_points=200)
    for _, curve in result.curves.groupby("run_id"):
        assert curve.x.iloc[0] == 0  # seconds since the run's first row
        wiggle = lambda values: np.abs(np.diff(values.to_numpy())).mean()  # noqa: E731
        assert wiggle(curve.smoothed) < wiggle(curve.value)


def test_prime_stride_avoids_factors_of_logging_intervals():
    assert prime_stride(0.5) == 1 and prime_stride(1) == 1
    assert prime_stride(2.5) == 7 and prime_stride(8) == 11 and prime_stride(24) == 29
    steps = pd.Series(np.arange(10, 50_001, 10))
    kept = steps[steps % prime_stride(12) == 0]
    assert 0.9 * len(steps) / 13 < len(kept) < 1.1 * len(steps) / 13


def test_overlay_figure_draws_raw_smoothed_and_best_traces_that_plotly_accepts(store_with_runs):
    import plotly.graph_objects as go
    from ui.charts import overlay_figure
    store, ids = store_with_runs
    result = compare_runs(store, ids, "train_loss", smoothing=0.9, max_points=200)
    names = {ids[0]: "long run", ids[1]: "short run"}
    fig = overlay_figure(result.curves, result.best, names, key="train_loss", x="step", log_y=True, smoothed=True)
    assert [t.name for t in fig.data if t.showlegend is not False] == ["long run", "short run"]
    assert len(fig.data) == 6  # per run: the faint raw curve, the smoothed one and the best point
    stars = [t for t in fig.data if t.mode == "markers"]
    assert [float(t.y[0]) for t in stars] == [-1.0, -1.0] and fig.layout.yaxis.type == "log"
    # built without Plotly's validation for speed, so check the result against it: this raises on a bad field
    assert go.Figure(fig.to_dict()).to_dict()["data"][1]["name"] == "long run"
