"""core.analysis against plain-Python references: LTTB, EMA, curves, best/summary values, config
differences, the Runs table and its filters, and export."""

from __future__ import annotations

import io
import json
import math
import sys
import time

import numpy as np
import pandas as pd
import pytest

from core.analysis import (
    MISSING, RUNS_TABLE_COLUMNS, best_point, config_diff, ema, export_runs, filter_runs, flatten,
    hparam_table, downsample, downsample_indices, metric_curves, metric_mode, runs_table, sparkline, summary_stats,
)
from core.config import RunConfig
from core.store import METRIC_COLUMNS, RunStore


# ---- references --------------------------------------------------------------------------------

def reference_ema(values: list[float], weight: float) -> list[float]:
    """TensorBoard's smoothing loop (debiased; non-finite values pass through and do not count)."""
    last, count, out = 0.0, 0, []
    for value in values:
        if not math.isfinite(value):
            out.append(value)
            continue
        last = last * weight + (1 - weight) * value
        count += 1
        out.append(last / (1 - weight**count))
    return out


def make_metrics(n_runs: int = 3, steps: int = 400, steps_per_epoch: int = 100, seed: int = 0) -> pd.DataFrame:
    """A tidy frame like the trainer logs: per-step train_loss and per-epoch val_loss/val_acc."""
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(n_runs):
        run_id, t0 = f"260101-00000{r}-abcd", 1_700_000_000.0 + 1000 * r
        for step in range(1, steps + 1):
            rows.append((run_id, step, step / steps_per_epoch, "train_loss", 2.0 / step**0.3 + rng.normal(0, 0.1),
                         t0 + 0.5 * step))
        for epoch in range(1, steps // steps_per_epoch + 1):
            step = epoch * steps_per_epoch
            rows.append((run_id, step, float(epoch), "val_loss", float(rng.uniform(0.5, 2)), t0 + 0.5 * step + 0.2))
            rows.append((run_id, step, float(epoch), "val_acc", float(rng.uniform(0.2, 0.9)), t0 + 0.5 * step + 0.2))
    return pd.DataFrame(rows, columns=METRIC_COLUMNS).astype({"run_id": "str", "key": "str"})


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_HOME", str(tmp_path / "lab"))
    s = RunStore()
    yield s
    s.close()


# ---- downsampling ------------------------------------------------------------------------------

@pytest.mark.parametrize("n, n_out", [(5000, 1000), (1001, 1000), (100, 10), (50_000, 300), (7, 5)])
def test_downsample_is_minmaxlttb_and_keeps_endpoints_and_extremes(n, n_out):
    from tsdownsample import MinMaxLTTBDownsampler
    rng = np.random.default_rng(n)
    x = np.sort(rng.uniform(0, 100, n))
    y = rng.normal(size=n).cumsum()
    keep = downsample_indices(x, y, n_out)
    assert len(keep) <= n_out and np.all(np.diff(keep) > 0)
    # the library's picks, plus the curve's ends and extremes
    library = MinMaxLTTBDownsampler().downsample(x, y, n_out=n_out - 2).astype(np.int64)
    assert set(library) <= set(keep.tolist())
    assert set(keep.tolist()) - set(library.tolist()) <= {0, n - 1, int(y.argmin()), int(y.argmax())}
    xs, ys = downsample(x, y, n_out)
    assert (xs[0], ys[0], xs[-1], ys[-1]) == (x[0], y[0], x[-1], y[-1])
    assert ys.max() == y.max() and ys.min() == y.min()


def test_downsample_keeps_every_curves_extremes():
    # MinMaxLTTB alone drops the highest or lowest point of about a third of these curves
    for seed in range(60):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(1200, 20_000))
        y = rng.normal(size=n).cumsum() + (rng.random(n) < 0.001) * rng.normal(0, 50, n)
        xs, ys = downsample(np.arange(n, dtype=np.float64), y, 1000)
        assert len(xs) <= 1000 and ys.max() == y.max() and ys.min() == y.min()


def test_downsample_keeps_a_single_spike_in_a_flat_series():
    y = np.zeros(5000)
    y[2345] = 10.0
    xs, ys = downsample(np.arange(5000.0), y, 100)
    assert 2345.0 in xs and ys.max() == 10.0
    # A dip survives too.
    y[2345] = -10.0
    assert downsample(np.arange(5000.0), y, 100)[1].min() == -10.0


def test_downsample_is_identity_for_short_input_and_drops_nans():
    x, y = np.arange(10.0), np.linspace(1, 2, 10)
    xs, ys = downsample(x, y, 10)
    assert np.array_equal(xs, x) and np.array_equal(ys, y)
    y[3] = np.nan
    xs, ys = downsample(x, y, 50)
    assert 3.0 not in xs and not np.isnan(ys).any() and len(xs) == 9
    x, y = np.arange(100.0), np.sin(np.arange(100.0))
    y[[5, 50]] = np.nan, np.inf
    xs, ys = downsample(x, y, 20)
    assert np.isfinite(ys).all() and len(xs) <= 20 and ys.max() == np.nanmax(np.where(np.isfinite(y), y, np.nan))
    with pytest.raises(ValueError):
        downsample(x, y, 1)


def test_downsample_is_fast_enough_for_100_runs():
    rng = np.random.default_rng(1)
    curves = [(np.arange(5000.0), rng.normal(size=5000).cumsum()) for _ in range(100)]
    started = time.perf_counter()
    for x, y in curves:
        assert 990 <= len(downsample(x, y, 1000)[0]) <= 1000
    print(f"\ndownsample: 100 x 5,000 -> 1,000 points in {time.perf_counter() - started:.3f} s", file=sys.stderr)


# ---- EMA ---------------------------------------------------------------------------------------

def test_ema_weight_zero_is_the_input():
    values = np.array([3.0, np.nan, 1.0, 2.0])
    assert np.array_equal(ema(values, 0.0), values, equal_nan=True)


@pytest.mark.parametrize("weight", [0.3, 0.9, 0.99])
def test_ema_matches_the_tensorboard_loop(weight):
    values = np.random.default_rng(2).normal(size=500)
    values[[10, 11, 200]] = [np.nan, np.inf, np.nan]
    got = ema(values, weight)
    want = np.array(reference_ema(values.tolist(), weight))
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    assert np.isnan(got[10]) and np.isinf(got[11])
    # Debiased: a constant series stays at its level from the first point on.
    np.testing.assert_allclose(ema(np.full(50, 4.0), weight), 4.0)


def test_ema_refuses_bad_weights():
    for weight in (-0.1, 1.0, float("nan")):
        with pytest.raises(ValueError):
            ema(np.ones(3), weight)


# ---- curves ------------------------------------------------------------------------------------

def test_metric_curves_x_axes():
    frame = make_metrics()
    by_step = metric_curves(frame, "val_acc", x="step")
    assert list(by_step.columns) == ["run_id", "x", "value", "smoothed"]
    assert sorted(by_step["run_id"].unique()) == sorted(frame["run_id"].unique())
    assert by_step.groupby("run_id")["x"].apply(list).map(lambda xs: xs == [100, 200, 300, 400]).all()
    by_epoch = metric_curves(frame, "val_acc", x="epoch")
    assert by_epoch.groupby("run_id")["x"].apply(list).map(lambda xs: xs == [1, 2, 3, 4]).all()
    np.testing.assert_array_equal(by_epoch["value"], by_step["value"])
    by_time = metric_curves(frame, "train_loss", x="time")
    first = by_time.groupby("run_id")["x"].first()
    np.testing.assert_allclose(first, 0.0)  # each run starts at 0 s although they started 1000 s apart
    np.testing.assert_allclose(by_time.groupby("run_id")["x"].last(), 0.5 * 399)
    with pytest.raises(ValueError):
        metric_curves(frame, "val_acc", x="wall")


def test_metric_curves_smoothing_changes_values_not_x():
    frame = make_metrics()
    raw = metric_curves(frame, "train_loss", smoothing=0.0)
    smooth = metric_curves(frame, "train_loss", smoothing=0.9)
    np.testing.assert_array_equal(raw["x"], smooth["x"])
    np.testing.assert_array_equal(raw["value"], smooth["value"])
    np.testing.assert_array_equal(raw["value"], raw["smoothed"])
    assert not np.allclose(smooth["value"], smooth["smoothed"])
    for run_id, part in smooth.groupby("run_id"):
        rows = frame[(frame["run_id"] == run_id) & (frame["key"] == "train_loss")]
        np.testing.assert_allclose(part["smoothed"], reference_ema(rows["value"].tolist(), 0.9))


def test_metric_curves_downsample_each_run_after_smoothing():
    frame = pd.concat([make_metrics(n_runs=2, steps=3000), make_metrics(n_runs=1, steps=100, seed=5)
                       .assign(run_id="260102-000000-beef")])
    curves = metric_curves(frame, "train_loss", smoothing=0.95, max_points=500)
    sizes = curves.groupby("run_id").size()
    assert sizes["260102-000000-beef"] == 100
    assert sizes.drop("260102-000000-beef").between(490, 500).all()
    for run_id, part in curves.groupby("run_id"):
        rows = frame[(frame["run_id"] == run_id) & (frame["key"] == "train_loss")].sort_values("step")
        full = pd.Series(reference_ema(rows["value"].tolist(), 0.95), index=rows["step"].to_numpy())
        # Both columns sit at the same x, and the smoothed one comes from the full series.
        np.testing.assert_allclose(part["smoothed"], full.loc[part["x"].astype(int)].to_numpy())
        np.testing.assert_allclose(part["value"], rows.set_index("step")["value"].loc[part["x"].astype(int)])
        assert part["x"].iloc[0] == rows["step"].iloc[0] and part["x"].iloc[-1] == rows["step"].iloc[-1]
        # the curve drawn (the smoothed one) keeps its extremes
        assert part["smoothed"].max() == pytest.approx(full.max())
        assert part["smoothed"].min() == pytest.approx(full.min())


def test_metric_curves_on_100_runs_of_5000_steps():
    runs, steps = 100, 5000
    rng = np.random.default_rng(3)
    step = np.tile(np.arange(1, steps + 1), runs)
    frame = pd.DataFrame({
        "run_id": np.repeat([f"260101-000000-{i:04x}" for i in range(runs)], steps),
        "step": step, "epoch": step / 500.0, "key": "train_loss",
        "value": rng.normal(size=runs * steps).cumsum(), "time": 1.7e9 + 0.05 * step,
    }).astype({"run_id": "str", "key": "str"})
    started = time.perf_counter()
    curves = metric_curves(frame, "train_loss", smoothing=0.6, max_points=1000)
    elapsed = time.perf_counter() - started
    sizes = curves.groupby("run_id").size()
    assert len(sizes) == runs and (sizes <= 1000).all()
    print(f"\nmetric_curves: {runs} runs x {steps} steps in {elapsed:.3f} s", file=sys.stderr)
    # Rows out of order give the same curves (sorted internally).
    shuffled = frame.sample(frac=1.0, random_state=0)
    pd.testing.assert_frame_equal(metric_curves(shuffled, "train_loss", smoothing=0.6), curves)


def test_metric_curves_empty_and_unknown_key():
    frame = make_metrics()
    assert metric_curves(frame, "no_such_key").empty
    assert list(metric_curves(frame.iloc[:0], "val_acc").columns) == ["run_id", "x", "value", "smoothed"]


# ---- best values and summaries -----------------------------------------------------------------

def test_metric_mode():
    assert [metric_mode(k) for k in ("val_acc", "val_top5", "samples_per_s", "val_loss", "epoch_time_s")] == \
        ["max", "max", "max", "min", "min"]


@pytest.mark.parametrize("key, pick", [("val_acc", "idxmax"), ("val_loss", "idxmin")])
def test_best_point_picks_max_for_acc_and_min_for_loss(key, pick):
    frame = make_metrics()
    best = best_point(frame, key)
    rows = frame[frame["key"] == key]
    want = rows.loc[getattr(rows.groupby("run_id")["value"], pick)()]
    assert list(best.columns) == ["run_id", "step", "epoch", "value"]
    assert best["run_id"].tolist() == want["run_id"].tolist()
    assert best["step"].tolist() == want["step"].tolist()
    np.testing.assert_array_equal(best["value"], want["value"])
    # An explicit mode wins over the key's own.
    flipped = best_point(frame, key, "min" if pick == "idxmax" else "max")
    assert not np.array_equal(flipped["value"], best["value"])


def test_summary_stats_match_a_groupby_reference():
    frame = make_metrics(n_runs=4)
    frame.loc[frame.sample(frac=0.05, random_state=1).index, "value"] = np.nan  # gaps are skipped
    for key in ("train_loss", "val_acc"):
        stats = summary_stats(frame, key).set_index("run_id")
        rows = frame[(frame["key"] == key) & frame["value"].notna()].sort_values(["run_id", "step"])
        grouped = rows.groupby("run_id")["value"]
        np.testing.assert_array_equal(stats["min"], grouped.min())
        np.testing.assert_array_equal(stats["max"], grouped.max())
        np.testing.assert_array_equal(stats["last"], grouped.last())
        np.testing.assert_array_equal(stats["count"], grouped.count())
        best = grouped.max() if metric_mode(key) == "max" else grouped.min()
        np.testing.assert_array_equal(stats["best"], best)
        at_best = rows.loc[grouped.idxmax() if metric_mode(key) == "max" else grouped.idxmin(), "step"]
        assert stats["step_of_best"].tolist() == at_best.tolist()


def test_sparkline():
    frame = make_metrics()
    line = sparkline(frame, "260101-000001-abcd", "train_loss", n=40)
    rows = frame[(frame["run_id"] == "260101-000001-abcd") & (frame["key"] == "train_loss")]
    assert 36 <= len(line) <= 40 and all(isinstance(v, float) for v in line)
    assert line[0] == rows["value"].iloc[0] and line[-1] == rows["value"].iloc[-1]
    assert max(line) == rows["value"].max() and min(line) == rows["value"].min()
    assert sparkline(frame, "260101-000001-abcd", "val_acc") == \
        frame[(frame["run_id"] == "260101-000001-abcd") & (frame["key"] == "val_acc")]["value"].tolist()
    assert sparkline(frame, "nope-nope-nope", "val_acc") == []


# ---- configs -----------------------------------------------------------------------------------

def test_flatten():
    assert flatten({"optim": {"lr": 0.1, "betas": [0.9, 0.99]}, "seed": 1, "x": {}}) == \
        {"optim.lr": 0.1, "optim.betas": [0.9, 0.99], "seed": 1, "x": {}}


def test_config_diff_shows_only_differing_fields():
    a = RunConfig().to_dict()
    b = RunConfig().replace(**{"optim.lr": 0.01, "model.name": "mlp"}).to_dict()
    c = RunConfig().replace(**{"optim.lr": 0.01}).to_dict()
    c["optim"]["extra"] = True  # only in one run
    diff = config_diff({"a": a, "b": b, "c": c})
    assert list(diff.columns) == ["a", "b", "c"]
    assert list(diff.index) == ["model.name", "optim.lr", "optim.extra"]
    assert diff.loc["optim.lr"].tolist() == ["0.001", "0.01", "0.01"]
    assert diff.loc["optim.extra"].tolist() == [MISSING, MISSING, "True"]
    assert config_diff({"a": a, "b": RunConfig().to_dict()}).empty
    # 1 and 1.0 are the same value; True and 1 are not.
    assert config_diff({"a": {"w": 1}, "b": {"w": 1.0}}).empty
    assert list(config_diff({"a": {"w": 1}, "b": {"w": True}}).index) == ["w"]


def test_hparam_table_types_and_metric():
    runs = pd.DataFrame({"id": ["r1", "r2", "r3"], "name": ["one", "two", "three"]})
    configs = {
        "r1": {"name": "one", "optim": {"lr": 0.1, "optimizer": "sgd", "batch_size": 64}, "model": {"pretrained": True}},
        "r2": {"name": "two", "optim": {"lr": 0.01, "optimizer": "adam", "batch_size": 64}, "model": {"pretrained": False}},
        "r3": {"name": "three", "optim": {"lr": "0.001", "optimizer": "adam", "batch_size": 64}},
    }
    table = hparam_table(runs, configs, {"r1": 0.5, "r2": 0.75})
    # Automatic fields: only those that differ, and not the run's own name.
    assert list(table.columns) == ["run_id", "name", "optim.lr", "optim.optimizer", "model.pretrained", "metric"]
    assert table["optim.lr"].dtype == np.float64 and table["optim.lr"].tolist() == [0.1, 0.01, 0.001]
    assert table["optim.optimizer"].tolist() == ["sgd", "adam", "adam"]
    assert table["model.pretrained"].tolist() == ["True", "False", MISSING]
    assert table["metric"].tolist()[:2] == [0.5, 0.75] and math.isnan(table["metric"].iloc[2])
    chosen = hparam_table(runs, configs, {}, fields=["optim.batch_size"], metric_name="val_acc")
    assert list(chosen.columns) == ["run_id", "name", "optim.batch_size", "val_acc"]
    assert chosen["optim.batch_size"].dtype == np.float64


# ---- store-backed: runs table, filters, export -------------------------------------------------

def _make_runs(store: RunStore) -> dict[str, str]:
    ids = {}
    for name, overrides, status, tags in [
        ("baseline cnn", {"optim.lr": 0.001}, "completed", ["baseline"]),
        ("fast sgd", {"optim.optimizer": "sgd", "optim.lr": 0.1, "model.name": "mlp"}, "failed", ["sweep", "sgd"]),
        ("cifar resnet", {"data.name": "cifar10", "model.name": "resnet18_small"}, "running", ["sweep"]),
    ]:
        run_id = store.create_run(RunConfig().replace(**overrides).to_dict(), name=name)
        if status != "queued":
            store.set_status(run_id, "running")
        if status in ("completed", "failed"):
            store.finish(run_id, status)
        store.set_tags(run_id, tags)
        ids[name] = run_id
    return ids


def test_runs_table_and_filters(store):
    ids = _make_runs(store)
    store.update_summary(ids["baseline cnn"], {"best_val_acc": 0.91, "last": {"val_acc": 0.9, "val_loss": 0.3}})
    runs = store.list_runs()
    configs = {run_id: store.get_run(run_id).config for run_id in runs["id"]}
    summaries = {run_id: store.get_run(run_id).summary for run_id in runs["id"]}
    table = runs_table(runs, configs, summaries)
    assert list(table.columns) == RUNS_TABLE_COLUMNS and len(table) == 3
    base = table.set_index("name").loc["baseline cnn"]
    assert (base["task"], base["dataset"], base["model"], base["optimizer"]) == ("classification", "digits", "cnn", "adam")
    assert (base["lr"], base["batch_size"], base["epochs"]) == (0.001, 64, 5)
    assert (base["best_val_acc"], base["last_val_acc"], base["tags"]) == (0.91, 0.9, "baseline")
    assert base["duration_s"] >= 0 and isinstance(base["created"], pd.Timestamp)
    assert math.isnan(table.set_index("name").loc["fast sgd", "last_val_acc"])
    assert table.set_index("name").loc["fast sgd", "tags"] == "sweep, sgd"

    names = lambda t: sorted(t["name"])  # noqa: E731
    assert names(filter_runs(table)) == names(table)
    assert names(filter_runs(table, text="SGD")) == ["fast sgd"]  # name, case-insensitive
    assert names(filter_runs(table, text="resnet18")) == ["cifar resnet"]  # model
    assert names(filter_runs(table, text="cifar10 sweep")) == ["cifar resnet"]  # every word must match
    assert names(filter_runs(table, text=ids["fast sgd"][-4:])) == ["fast sgd"]  # id
    assert names(filter_runs(table, statuses=["completed", "failed"])) == ["baseline cnn", "fast sgd"]
    assert names(filter_runs(table, statuses="running")) == ["cifar resnet"]
    assert names(filter_runs(table, tags=["Sweep"])) == ["cifar resnet", "fast sgd"]
    assert names(filter_runs(table, tags=["sweep"], models=["mlp"])) == ["fast sgd"]
    assert names(filter_runs(table, datasets=["digits"], text="cnn")) == ["baseline cnn"]
    assert filter_runs(table, text="nothing-like-this").empty


def test_runs_table_of_no_runs(store):
    table = runs_table(store.list_runs(), {})
    assert table.empty and list(table.columns) == RUNS_TABLE_COLUMNS


def test_export_round_trips(store):
    ids = _make_runs(store)
    chosen = [ids["fast sgd"], ids["baseline cnn"]]
    for i, run_id in enumerate(chosen):
        store.log_metrics([(run_id, s, s / 10, "train_loss", 1.0 / s + i, 1e9 + s) for s in range(1, 21)]
                          + [(run_id, 10 * e, float(e), "val_acc", 0.1 * e, 1e9 + 10 * e) for e in (1, 2)])
    store.update_summary(ids["fast sgd"], {"best_val_loss": float("nan"), "last": {"val_acc": 0.2}})
    csv_bytes, json_bytes = export_runs(store, chosen)
    frame = pd.read_csv(io.BytesIO(csv_bytes))
    assert list(frame.columns) == METRIC_COLUMNS and len(frame) == 2 * 22
    assert frame["run_id"].unique().tolist() == chosen  # the order asked for
    pd.testing.assert_frame_equal(frame.sort_values(["run_id", "key", "step"]).reset_index(drop=True),
                                  store.metrics(chosen).astype({"run_id": object, "key": object}),
                                  check_dtype=False)
    records = json.loads(json_bytes)  # strict JSON: the NaN became null
    assert list(records) == chosen
    for run_id in chosen:
        run = store.get_run(run_id)
        assert records[run_id]["config"] == run.config
        assert (records[run_id]["name"], records[run_id]["status"]) == (run.name, run.status)
    assert records[ids["fast sgd"]]["summary"] == {"best_val_loss": None, "last": {"val_acc": 0.2}}
    assert records[ids["fast sgd"]]["config"]["optim"]["optimizer"] == "sgd"


def test_export_refuses_unknown_runs(store):
    from core.errors import RunNotFound

    with pytest.raises(RunNotFound):
        export_runs(store, ["260101-000000-ffff"])
    with pytest.raises(RunNotFound):
        export_runs(store, [])


def test_analysis_imports_neither_torch_nor_streamlit():
    import subprocess

    code = "import sys, core.analysis; print(sorted(m for m in ('torch', 'streamlit') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_remaining_seconds_follows_the_pace_since_the_resume():
    from core.analysis import remaining_seconds
    rows = [(step, 1000.0 + step) for step in range(1, 101)]  # 1 step/s, then a night off
    resumed = 1000.0 + 100 + 36_000
    rows += [(100 + i, resumed + 0.5 * i) for i in range(1, 21)]  # resumed at 2 steps/s
    frame = pd.DataFrame({"run_id": "r", "step": [s for s, _ in rows], "epoch": 0, "key": "train_loss",
                          "value": 1.0, "time": [t for _, t in rows]})
    assert remaining_seconds(frame, 200, since=resumed) == pytest.approx((200 - 120) / 2)
    assert remaining_seconds(frame, 200) > 3600  # from the start, the night counts: why the resume time is passed
    # validation pauses recur every epoch, so they belong in the pace: 10 steps per 2 s, then 45 s each 50 steps
    times = [2.0 * (i // 10) + 45.0 * (i // 50) for i in range(0, 101, 10)]
    epochs = pd.DataFrame({"run_id": "r", "step": list(range(0, 101, 10)), "epoch": 0, "key": "train_loss",
                           "value": 1.0, "time": times})
    assert remaining_seconds(epochs, 200) == pytest.approx(times[-1])  # 100 more steps take as long as the first 100
    assert remaining_seconds(epochs.iloc[:1], 200) is None and remaining_seconds(epochs.iloc[:0], 200) is None


def test_moving_average_is_a_trailing_mean_of_the_same_length():
    from core.analysis import moving_average
    assert moving_average([2.0, 4.0, 6.0, 8.0], window=2).tolist() == [2.0, 3.0, 5.0, 7.0]  # shorter at the start
    assert moving_average([], window=3).size == 0


def test_run_progress_counts_steps_epochs_and_the_time_left():
    from core.analysis import run_progress
    config = {"optim": {"epochs": 4}}
    frame = pd.DataFrame({"run_id": "r", "step": [10, 20, 30], "epoch": 0, "key": "train_loss", "value": 1.0,
                          "time": [100.0, 110.0, 120.0]})  # 1 step per second
    running = run_progress("running", config, {"steps_per_epoch": 25}, frame)
    assert (running.done, running.total, running.epoch, running.epochs) == (30, 100, 2, 4)
    assert running.fraction == pytest.approx(0.3) and running.eta_s == pytest.approx(70.0)
    # a finished run is whole even when its last logged row came before its last step; no ETA unless running
    done = run_progress("completed", config, {"steps_per_epoch": 25}, frame)
    assert (done.done, done.fraction, done.epoch, done.eta_s) == (100, 1.0, 4, None)
    queued = run_progress("queued", config, {}, frame.iloc[:0])
    assert (queued.total, queued.fraction, queued.epoch, queued.eta_s) == (0, 0.0, 1, None)
