"""Comparing runs: metric curves (smoothed, downsampled), best and summary values, config
differences, the Runs-page table and its filters, and export of runs as CSV and JSON (and as TensorBoard event
files: core.analysis.tensorboard, which imports torch, so it is not re-exported here).

Pure pandas and numpy on what the run store returns; imports neither torch nor streamlit, so the
Runs page renders without waiting for torch.
"""

from core.analysis.configs import (
    MISSING, RUNS_COLUMN_ORDER, RUNS_TABLE_COLUMNS, config_diff, differing_fields, display_value, filter_runs, flatten,
    hparam_table, runs_table,
)
from core.analysis.compare import Comparison, compare_runs, prime_stride
from core.analysis.export import export_metrics_csv, export_runs, export_runs_json
from core.analysis.series import (
    BEST_COLUMNS, CURVE_COLUMNS, STATS_COLUMNS, X_AXES, Progress, best_point, downsample, downsample_indices, ema,
    metric_curves, metric_mode, moving_average, remaining_seconds, run_progress, sparkline, summary_stats,
)

__all__ = [
    "Comparison", "compare_runs", "prime_stride", "export_metrics_csv", "export_runs_json",
    "BEST_COLUMNS", "CURVE_COLUMNS", "MISSING", "RUNS_COLUMN_ORDER", "RUNS_TABLE_COLUMNS", "STATS_COLUMNS", "X_AXES",
    "best_point", "config_diff", "differing_fields", "display_value", "ema", "export_runs",
    "filter_runs", "flatten", "hparam_table", "downsample", "downsample_indices", "metric_curves", "metric_mode",
    "moving_average", "Progress", "remaining_seconds", "run_progress", "runs_table", "sparkline", "summary_stats",
]
