"""What a run looks like outside the database: statuses, the `Run` record and run ids."""

from __future__ import annotations

import json
import math
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from core.config import task_of
from core.errors import LabError
from core.paths import RUN_ID_PATTERN

QUEUED = "queued"
RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
INTERRUPTED = "interrupted"

ACTIVE_STATUSES = (QUEUED, RUNNING)
FINAL_STATUSES = (COMPLETED, FAILED, CANCELLED, INTERRUPTED)
SETTLED_STATUSES = (COMPLETED, CANCELLED, INTERRUPTED)  # stopped for good or for now, weights usable
RESUMABLE_STATUSES = (INTERRUPTED, CANCELLED)  # can continue from their last checkpoint
STATUSES = ACTIVE_STATUSES + FINAL_STATUSES

# Shown to the user on a run whose worker vanished; it says what happened and what to do next.
INTERRUPTED_MESSAGE = (
    "the worker process stopped without finishing (killed or the machine restarted); "
    "resume it to continue from its last checkpoint"
)


class InvalidStatus(LabError, ValueError):
    """A run status that is not one of STATUSES (a programming error or a bad CLI argument)."""


def check_status(status: str, allowed: tuple[str, ...] = STATUSES) -> str:
    if status not in allowed:
        raise InvalidStatus(f"'{status}' is not a run status here; use one of: {', '.join(allowed)}")
    return status


def new_run_id() -> str:
    """A sortable, readable id: UTC 'YYMMDD-HHMMSS-xxxx'.

    The time prefix makes ids sort like creation order in folder listings; the 4 random hex
    characters separate runs submitted within the same second (the store retries on a clash).
    """
    run_id = time.strftime("%y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)
    assert RUN_ID_PATTERN.match(run_id), run_id
    return run_id


def dumps(value: Any) -> str:
    # allow_nan keeps NaN/inf summaries (a diverged run) readable by Python's json.loads.
    return json.dumps(value, separators=(",", ":"), allow_nan=True)


def loads(text: str | None, default: Any) -> Any:
    """Decode a JSON column; a NULL or damaged value reads as `default` rather than breaking listings."""
    if text is None or text == "":
        return default
    try:
        value = json.loads(text)
    except ValueError:
        return default
    return value if isinstance(value, type(default)) else default


@dataclass
class Run:
    """One row of the runs table as Python values (JSON columns decoded)."""

    id: str
    name: str
    status: str
    dataset: str | None = None
    model: str | None = None
    created_at: float = 0.0
    started_at: float | None = None
    ended_at: float | None = None
    config: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    tags: list = field(default_factory=list)
    notes: str = ""
    error: str | None = None
    device: str | None = None
    versions: dict = field(default_factory=dict)
    pid: int | None = None
    heartbeat: float | None = None
    cancel_requested: bool = False
    active_s: float = 0.0  # seconds spent running in the stretches that ended (resumes start new ones)
    stretch_at: float | None = None  # when the current stretch of running began

    @property
    def duration_s(self) -> float | None:
        """Time spent running, over all its stretches (to now while it runs; the time a run sat cancelled or
        interrupted before a resume does not count); None if it never started."""
        if self.started_at is None:
            return None
        current = max(0.0, time.time() - self.stretch_at) if self.stretch_at is not None else 0.0
        return float(self.active_s or 0.0) + current

    @property
    def task(self) -> str:
        return task_of(self.config)

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def best_val_acc(self) -> float:
        return best_val_acc(self.summary)


def watched_metric(summary: dict) -> str:
    """The metric the run's task watches for its best checkpoint: val_acc unless the task named another
    (val_loss, val_fd, val_bleu4, val_return...)."""
    metric = summary.get("best_metric") if isinstance(summary, dict) else None
    return metric if isinstance(metric, str) and metric else "val_acc"


_METRIC_WORDS = {
    "acc": "accuracy", "robust_acc": "robust accuracy", "tta_acc": "accuracy with test-time augmentation", "top5": "top-5 accuracy", "loss": "loss", "bleu4": "BLEU-4", "fd": "Fréchet distance",
    "return": "return", "ppl": "perplexity", "lr": "learning rate", "samples_per_s": "samples / s",
    "epoch_time_s": "epoch time (s)", "gpu_mem_mb": "GPU memory (MB)", "kl": "KL divergence",
    # a CUDA run's device at each log row (core.engine.device_stats)
    "gpu_mem_alloc_mb": "GPU memory allocated (MB)", "gpu_mem_reserved_mb": "GPU memory reserved (MB)",
    "gpu_mem_peak_mb": "GPU memory peak (MB)", "gpu_mem_total_mb": "GPU memory total (MB)",
    "gpu_util_pct": "GPU utilisation (%)",
    "d_loss": "discriminator loss", "g_loss": "generator loss", "d_real": "D(real)", "d_fake": "D(fake)",
    "fd_real": "Fréchet distance between real halves (floor)",
    "bleu": "BLEU",  # seq2seq's corpus BLEU (sacrebleu, 0-100)
}
_METRIC_PREFIXES = (("epoch_train_", "training (epoch mean) "), ("train_", "training "), ("val_", "validation "))


def metric_title(key: str) -> str:
    """A metric key as people read it: val_acc -> "validation accuracy", epoch_time_s -> "epoch time (s)".
    Unknown keys keep their words, with underscores as spaces."""
    prefix, rest = "", str(key)
    for start, words in _METRIC_PREFIXES:
        if rest.startswith(start):
            prefix, rest = words, rest[len(start):]
            break
    if rest in _METRIC_WORDS:
        return prefix + _METRIC_WORDS[rest]
    if rest.endswith("_s"):
        rest = rest[:-2] + " (s)"
    return prefix + rest.replace("_", " ")


def best_of(summary: dict) -> float | None:
    """The watched metric's best value so far, or None before the first validation."""
    value = summary.get(f"best_{watched_metric(summary)}") if isinstance(summary, dict) else None
    return float(value) if isinstance(value, (int, float)) else None


def best_val_acc(summary: dict) -> float:
    value = summary.get("best_val_acc") if isinstance(summary, dict) else None
    try:
        return float(value) if value is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


# The column order used by every SELECT of whole runs, so rows map onto Run without sqlite3.Row.
RUN_COLUMNS = (
    "id", "name", "status", "dataset", "model", "created_at", "started_at", "ended_at",
    "config", "summary", "tags", "notes", "error", "device", "versions", "pid", "heartbeat",
    "cancel_requested", "active_s", "stretch_at",
)


def run_from_row(row: tuple) -> Run:
    values = dict(zip(RUN_COLUMNS, row))
    values["config"] = loads(values["config"], {})
    values["summary"] = loads(values["summary"], {})
    values["versions"] = loads(values["versions"], {})
    values["tags"] = loads(values["tags"], [])
    values["notes"] = values["notes"] or ""
    values["cancel_requested"] = bool(values["cancel_requested"])
    return Run(**values)
