"""Run store: SQLite (runs, metrics, events) plus one artifact folder per run under LAB_HOME/runs.

    store = RunStore()                      # LAB_HOME/lab.db
    run_id = store.create_run(config, name="resnet on cifar")
    with MetricBuffer(store, run_id) as buf:
        buf.add(step, epoch, "train/loss", loss)
    store.finish(run_id, "completed")

Safe to use from many processes and threads at once; never imports torch or streamlit.
"""

from core.store.buffer import MetricBuffer
from core.store.db import EVENT_COLUMNS, LIST_COLUMNS, METRIC_COLUMNS, RunStore, stale_after_s
from core.store.procs import pid_alive
from core.store.records import (
    ACTIVE_STATUSES,
    CANCELLED,
    COMPLETED,
    FAILED,
    FINAL_STATUSES,
    RESUMABLE_STATUSES,
    SETTLED_STATUSES,
    INTERRUPTED,
    INTERRUPTED_MESSAGE,
    QUEUED,
    RUNNING,
    STATUSES,
    InvalidStatus,
    Run,
    new_run_id,
)

__all__ = [
    "ACTIVE_STATUSES", "CANCELLED", "COMPLETED", "EVENT_COLUMNS", "FAILED", "FINAL_STATUSES", "RESUMABLE_STATUSES", "SETTLED_STATUSES",
    "INTERRUPTED", "INTERRUPTED_MESSAGE", "InvalidStatus", "LIST_COLUMNS", "METRIC_COLUMNS",
    "MetricBuffer", "QUEUED", "RUNNING", "Run", "RunStore", "STATUSES", "new_run_id", "pid_alive",
    "stale_after_s",
]
