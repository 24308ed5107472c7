"""Download bundles for the Runs page: the chosen runs' metrics as a tidy CSV, their records as JSON.

Both come back as bytes so a page hands them straight to a download button, and the CLI can write
them to files. The CSV is tidy (one row per logged value) because that is what pandas, R and
spreadsheets pivot easily; the JSON is keyed by run id so the two files join on run_id.
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterable

from core.errors import RunNotFound
from core.store import METRIC_COLUMNS, RunStore

# What each run's JSON record holds besides its config and summary: enough to tell runs apart
# and to see why one stopped, without the worker's internals (pid, heartbeat).
_RUN_FIELDS = ("name", "status", "dataset", "model", "tags", "notes", "device", "error",
               "created_at", "started_at", "ended_at")


def export_runs(store: RunStore, run_ids: Iterable[str]) -> tuple[bytes, bytes]:
    """(metrics CSV, runs JSON) for `run_ids`, in the order given (duplicates dropped).

    CSV columns: run_id, step, epoch, key, value, time (UTF-8, a header row, full float precision).
    JSON: {run_id: {"name", "status", "config", "summary", ...}}. Non-finite numbers in a summary
    (a diverged run's best loss) become null, so strict JSON parsers (browsers, jq) accept the file.
    An unknown run id raises RunNotFound before anything is read.
    """
    return export_metrics_csv(store, run_ids), export_runs_json(store, run_ids)


def checked_ids(store: RunStore, run_ids: Iterable[str]) -> list[str]:
    """The run ids in the order given, duplicates dropped; RunNotFound for none, a malformed or an unknown one."""
    if isinstance(run_ids, str):
        run_ids = [run_ids]
    ids = list(dict.fromkeys(str(run_id) for run_id in run_ids))
    if not ids:
        raise RunNotFound("no runs chosen to export")
    known = store.get_runs(ids)  # also rejects malformed ids
    missing = [run_id for run_id in ids if run_id not in known]
    if missing:
        raise RunNotFound(f"no run with id '{missing[0]}'")
    return ids


def export_metrics_csv(store: RunStore, run_ids: Iterable[str]) -> bytes:
    """The runs' metrics as a tidy CSV: run_id, step, epoch, key, value, time."""
    ids = checked_ids(store, run_ids)
    metrics = store.metrics(ids)
    # The store sorts by run_id; keep the user's order of runs (stable, so steps stay in order).
    rank = {run_id: position for position, run_id in enumerate(ids)}
    metrics = metrics.sort_values("run_id", key=lambda column: column.map(rank), kind="stable")
    return metrics[METRIC_COLUMNS].to_csv(index=False).encode("utf-8")


def export_runs_json(store: RunStore, run_ids: Iterable[str]) -> bytes:
    """{run_id: {"name", "status", "config", "summary", ...}} as strict JSON."""
    ids = checked_ids(store, run_ids)
    runs = store.get_runs(ids)
    records = {}
    for run_id in ids:
        run = runs[run_id]
        record: dict[str, Any] = {field: getattr(run, field) for field in _RUN_FIELDS}
        record["config"] = run.config
        record["summary"] = run.summary
        records[run.id] = _finite_or_null(record)
    return json.dumps(records, indent=2, allow_nan=False).encode("utf-8")


def _finite_or_null(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): _finite_or_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(item) for item in value]
    return value
