"""Everything the Runs page's comparison draws, read from the store with the heavy work in SQLite."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from core.analysis.series import metric_curves, metric_mode

POINT_BUDGET = 100_000  # points per chart over all runs: more than a screen can show, few enough to ship


@dataclass
class Comparison:
    key: str
    mode: str  # "max" or "min": which way is better for this metric
    curves: pd.DataFrame  # run_id, x, value, smoothed (downsampled)
    best: pd.DataFrame  # run_id, step, epoch, value: the best point of each run's full history
    stats: pd.DataFrame  # run_id, best, last, min, max, step_of_best, epoch_of_best, count


def prime_stride(ratio: float) -> int:
    """1 when no thinning is needed, else the smallest prime >= max(7, ratio).

    Primes of 7 and up share no factor with the usual logging intervals (1, 2, 5, 10, 20, 50...),
    so thinning by `step % stride == 0` keeps an even share of every series.
    """
    if ratio <= 1:
        return 1
    candidate = max(7, math.ceil(ratio))
    while any(candidate % d == 0 for d in range(2, int(candidate ** 0.5) + 1)):
        candidate += 1
    return candidate


def compare_runs(store, run_ids: list[str], key: str, *, x: str = "step", smoothing: float = 0.0,
                 max_points: int = 1000) -> Comparison:
    mode = metric_mode(key)
    per_run = max(100, min(max_points, POINT_BUDGET // max(1, len(run_ids))))
    stats = store.metric_stats(run_ids, key, mode)
    # thin only the runs with more than twice the points a curve keeps; MinMaxLTTB then picks the final ones
    long_runs = stats.loc[stats["count"] > 2 * per_run, "run_id"].tolist()
    stride = prime_stride(stats["count"].max() / (2 * per_run)) if long_runs else 1
    sample = store.metric_sample(run_ids, key, stride, thin=long_runs).assign(key=key)
    curves = metric_curves(sample, key, x=x, smoothing=smoothing, max_points=per_run)
    best = stats.rename(columns={"step_of_best": "step", "epoch_of_best": "epoch", "best": "value"})
    return Comparison(key, mode, curves, best[["run_id", "step", "epoch", "value"]], stats)
