"""Metric series for charts and tables: smoothing, downsampling, best and last values per run.

Every function takes the tidy frame `RunStore.metrics` returns (columns run_id, step, epoch, key,
value, time; many runs, many keys) and works on one key. Runs are grouped with numpy
(factorize + one sort), never with a Python loop over rows, so a page can redraw 100 runs of
5,000 steps on every poll.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.analysis.downsample import downsample, downsample_indices

X_AXES = ("step", "epoch", "time")
CURVE_COLUMNS = ["run_id", "x", "value", "smoothed"]
BEST_COLUMNS = ["run_id", "step", "epoch", "value"]
STATS_COLUMNS = ["run_id", "best", "last", "min", "max", "step_of_best", "count"]

# Substrings of keys where larger is better (val_acc, epoch_train_acc, val_top5, throughput).
_HIGHER_IS_BETTER = ("acc", "top5", "samples_per_s")

__all__ = [
    "BEST_COLUMNS", "CURVE_COLUMNS", "STATS_COLUMNS", "X_AXES", "Progress", "best_point", "downsample",
    "downsample_indices", "ema", "metric_curves", "metric_mode", "moving_average", "remaining_seconds", "run_progress",
    "sparkline", "summary_stats",
]


def metric_mode(key: str) -> str:
    """'max' for accuracies and throughput, 'min' for everything else (losses, times, memory)."""
    return "max" if any(part in key for part in _HIGHER_IS_BETTER) else "min"


def ema(values: np.ndarray, weight: float) -> np.ndarray:
    """Debiased exponential moving average, as TensorBoard's smoothing slider computes it.

        last = weight * last + (1 - weight) * value;  smoothed = last / (1 - weight ** n)

    where n counts the finite values so far. The debiasing keeps the start of the curve at the
    level of the data instead of pulling it towards 0. Non-finite values (a NaN or inf loss) are
    returned as they are and neither count nor move the average, as in TensorBoard.
    """
    values = np.asarray(values, dtype=np.float64)
    weight = float(weight)
    if not 0.0 <= weight < 1.0:  # also refuses NaN
        raise ValueError(f"smoothing weight must be at least 0 and below 1, got {weight}")
    if weight == 0.0 or values.size == 0:
        return values.copy()
    finite = np.isfinite(values)
    # pandas' ewm(adjust=True) is exactly this average: sum(w^i * x[t-i]) / sum(w^i) equals the
    # debiased recursion above, and ignore_na=True counts only the values seen (TensorBoard's n).
    # It runs in compiled code, where a Python loop would cost ~1 ms per 5,000 points.
    series = pd.Series(np.where(finite, values, np.nan))
    smoothed = series.ewm(alpha=1.0 - weight, adjust=True, ignore_na=True).mean().to_numpy()
    return np.where(finite, smoothed, values)


def metric_curves(frame: pd.DataFrame, key: str, *, x: str = "step", smoothing: float = 0.0,
                  max_points: int = 1000) -> pd.DataFrame:
    """One metric of many runs, ready to plot: columns run_id, x, value, smoothed.

    `x` picks the horizontal axis: "step", "epoch" (fractional for per-window keys), or "time"
    (seconds since the run's first metric row in `frame`). Smoothing runs over each run's full
    series before downsampling, so the smoothed curve is the one you would get with every point.
    Each run is then cut to at most `max_points` with MinMaxLTTB (plus its extremes), choosing the points
    on the curve the user sees (the smoothed one when smoothing is on) and keeping raw and smoothed at the
    same x.
    Rows whose x or value is not finite are left out (a chart cannot place them).
    """
    if x not in X_AXES:
        raise ValueError(f"x must be one of {', '.join(X_AXES)}, got {x!r}")
    if int(max_points) < 2:
        raise ValueError(f"max_points must be at least 2, got {max_points}")
    ema(np.zeros(0), smoothing)  # validates the weight even when there is nothing to smooth
    rows, codes, run_ids = _key_rows(frame, key, with_run_id=False)
    if rows.empty:
        return _empty(CURVE_COLUMNS, {"run_id": "str", "x": "float64", "value": "float64", "smoothed": "float64"})

    value = rows["value"].to_numpy(np.float64)
    if x == "time":
        # The origin is each run's first row over all keys, so curves of different keys line up.
        origin = frame.groupby("run_id", sort=False)["time"].min().reindex(run_ids).to_numpy(np.float64)
        xs = rows["time"].to_numpy(np.float64) - origin[codes]
    else:
        xs = rows[x].to_numpy(np.float64)
    keep = np.isfinite(xs) & np.isfinite(value)
    xs, value, codes = xs[keep], value[keep], codes[keep]

    pieces_x, pieces_v, pieces_s, lengths = [], [], [], []
    bounds = _run_bounds(codes)
    for start, stop in bounds:
        seg_x, seg_v = xs[start:stop], value[start:stop]
        seg_s = ema(seg_v, smoothing) if smoothing > 0 else seg_v
        if seg_x.size > max_points:
            chosen = downsample_indices(seg_x, seg_s, max_points)
            seg_x, seg_v, seg_s = seg_x[chosen], seg_v[chosen], seg_s[chosen]
        pieces_x.append(seg_x)
        pieces_v.append(seg_v)
        pieces_s.append(seg_s)
        lengths.append(seg_x.size)
    present = codes[[start for start, _ in bounds]]  # runs left with a plottable row
    return pd.DataFrame({
        "run_id": np.repeat(np.asarray(run_ids, dtype=object)[present], lengths),
        "x": _concat(pieces_x),
        "value": _concat(pieces_v),
        "smoothed": _concat(pieces_s),
    }).astype({"run_id": "str"})


def best_point(frame: pd.DataFrame, key: str, mode: str | None = None) -> pd.DataFrame:
    """Per run, the row with the best value of `key`: columns run_id, step, epoch, value.

    `mode` is "max" or "min"; None picks it from the key (`metric_mode`). Ties go to the earliest
    step, the moment the run first reached that value. Runs with no finite value of `key` are left out.
    """
    mode = _check_mode(key, mode)
    rows, _, _ = _key_rows(frame, key, finite_only=True)
    if rows.empty:
        return _empty(BEST_COLUMNS, {"run_id": "str", "step": "int64", "epoch": "float64", "value": "float64"})
    positions = _best_positions(rows, mode)
    return rows.loc[positions, BEST_COLUMNS].reset_index(drop=True)


def summary_stats(frame: pd.DataFrame, key: str, mode: str | None = None) -> pd.DataFrame:
    """Per run: best, last (at the highest step), min, max, step_of_best and count of `key`.

    NaN and infinite values are ignored throughout (count is the number of finite values), so a
    run that diverged still shows its best and its last finite value.
    """
    mode = _check_mode(key, mode)
    rows, _, _ = _key_rows(frame, key, finite_only=True)
    if rows.empty:
        return _empty(STATS_COLUMNS, {"run_id": "str", "best": "float64", "last": "float64", "min": "float64",
                                      "max": "float64", "step_of_best": "int64", "count": "int64"})
    grouped = rows.groupby("run_id", sort=True)["value"]
    best = rows.loc[_best_positions(rows, mode)]
    return pd.DataFrame({
        "run_id": best["run_id"].to_numpy(),
        "best": best["value"].to_numpy(),
        "last": grouped.last().to_numpy(),  # rows are in step order within each run
        "min": grouped.min().to_numpy(),
        "max": grouped.max().to_numpy(),
        "step_of_best": best["step"].to_numpy(np.int64),
        "count": grouped.size().to_numpy(np.int64),
    }).astype({"run_id": "str"})


def sparkline(frame: pd.DataFrame, run_id: str, key: str, n: int = 40) -> list[float]:
    """At most `n` values of one run's `key` in step order, downsampled (MinMaxLTTB), for a run card."""
    rows, _, _ = _key_rows(frame[frame["run_id"] == run_id], key, finite_only=True)
    if rows.empty:
        return []
    _, values = downsample(rows["step"].to_numpy(np.float64), rows["value"].to_numpy(np.float64), n)
    return [float(v) for v in values]


# ---- helpers -----------------------------------------------------------------------------------

def _key_rows(frame: pd.DataFrame, key: str, *, finite_only: bool = False, with_run_id: bool = True):
    """Rows of `key` sorted by (run_id, step), with a fresh index; plus run codes and run ids.

    The key column is dropped (it is `key` throughout), and so is run_id unless `with_run_id`:
    gathering half a million strings costs more than everything else here together.

    Sorting is by integer codes of the run ids (pd.factorize with sort=True), which is far cheaper
    than sorting half a million strings; the sort is stable, so rows logged at the same step keep
    their logging order. Frames straight from the store are already in this order and skip it.
    """
    missing = {"run_id", "step", "key", "value"} - set(frame.columns)
    if missing:
        raise ValueError(f"the metrics frame lacks the column(s) {', '.join(sorted(missing))}")
    columns = [c for c in frame.columns if c != "key" and (with_run_id or c != "run_id")]
    mask = (frame["key"] == key).to_numpy(dtype=bool)
    run_column = frame["run_id"][mask]
    rows = frame.loc[mask, columns]
    if finite_only and not rows.empty:
        finite = np.isfinite(rows["value"].to_numpy(np.float64))
        rows, run_column = rows[finite], run_column[finite]
    codes, run_ids = pd.factorize(run_column, sort=True)
    steps = rows["step"].to_numpy()
    if codes.size > 1:
        ordered = np.all((codes[1:] > codes[:-1]) | ((codes[1:] == codes[:-1]) & (steps[1:] >= steps[:-1])))
        if not ordered:
            order = np.lexsort((steps, codes))
            rows, codes = rows.iloc[order], codes[order]
    return rows.reset_index(drop=True), codes, np.asarray(run_ids, dtype=object)


def _run_bounds(codes: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run's block in rows sorted by run code."""
    if codes.size == 0:
        return []
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    stops = np.r_[starts[1:], codes.size]
    return list(zip(starts.tolist(), stops.tolist()))


def _best_positions(rows: pd.DataFrame, mode: str) -> np.ndarray:
    # idxmax/idxmin return the first (earliest-step) position of the extreme; rows have a fresh
    # RangeIndex, so these are positions.
    grouped = rows.groupby("run_id", sort=True)["value"]
    return (grouped.idxmax() if mode == "max" else grouped.idxmin()).to_numpy()


def _check_mode(key: str, mode: str | None) -> str:
    mode = metric_mode(key) if mode is None else mode
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
    return mode


def _concat(pieces: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(pieces) if pieces else np.zeros(0)


def _empty(columns: list[str], dtypes: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype=dtypes[column]) for column in columns})


def remaining_seconds(frame: pd.DataFrame, total_steps: int, since: float | None = None) -> float | None:
    """Seconds until `total_steps` at one run's pace since `since` (when it last resumed; None: since
    it started), validation and checkpoint time included; None before there is a pace.

    A resumed run's wall-clock duration includes its pause (a night, say), so the pace is measured
    from the rows logged after the resume, not from the run's age.
    """
    if frame.empty or total_steps <= 0:
        return None
    rows = frame[frame.key == frame.key.value_counts().idxmax()]
    if since is not None:
        rows = rows[rows["time"] >= since]
    rows = rows.sort_values("time")
    if len(rows) < 2:
        return None
    first, last = rows.iloc[0], rows.iloc[-1]
    if last["time"] <= first["time"] or last["step"] <= first["step"]:
        return None
    pace = (last["step"] - first["step"]) / (last["time"] - first["time"])  # steps per second
    return max(0.0, (total_steps - float(last["step"])) / pace)


@dataclass(frozen=True)
class Progress:
    done: int  # steps done
    total: int  # steps in the whole run (0 until the worker knows its steps per epoch)
    epoch: int  # the epoch under way, from 1 (the last one once done)
    epochs: int
    eta_s: float | None  # seconds left at the pace since the latest resume; None unless running with a pace
    eta_estimated: bool = False  # eta_s comes from the estimate made before launch: no pace measured yet

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0


def run_progress(status: str, config: dict, summary: dict, frame: pd.DataFrame,
                 since: float | None = None) -> Progress:
    """Where a run stands: steps done of all its steps, the epoch under way and (while it runs) the time
    left. `frame` holds the run's metric rows; `since` is when it last resumed (core.jobs.runner.resumed_at)."""
    epochs = int(config["optim"]["epochs"])
    per_epoch = int(summary.get("steps_per_epoch") or 0)
    total = epochs * per_epoch
    done = int(frame["step"].max()) if not frame.empty else 0
    if status == "completed":
        done = total or done
    epoch = min(epochs, done // max(1, per_epoch) + 1)
    eta = remaining_seconds(frame, total, since=since) if status == "running" and total else None
    guessed = summary.get("estimated_seconds_per_step")
    if eta is None and status == "running" and total and isinstance(guessed, (int, float)):
        # no pace measured yet (the first log window is still under way): the estimate made before launch
        return Progress(done=done, total=total, epoch=epoch, epochs=epochs, eta_s=(total - done) * float(guessed),
                        eta_estimated=True)
    return Progress(done=done, total=total, epoch=epoch, epochs=epochs, eta_s=eta)


def moving_average(values, window: int = 20) -> np.ndarray:
    """Trailing mean over up to `window` values (shorter at the start), same length as `values`."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return values
    sums = np.cumsum(np.insert(values, 0, 0.0))
    index = np.arange(1, values.size + 1)
    start = np.maximum(0, index - window)
    return (sums[index] - sums[start]) / (index - start)
