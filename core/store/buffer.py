"""Batches metric rows on the training hot path and writes them to the store in one transaction."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.store.db import RunStore


class MetricBuffer:
    """Collects (step, epoch, key, value) rows and flushes them every `flush_rows` rows or
    `flush_seconds` seconds, whichever comes first, and on `flush()` / leaving a `with` block.

    `add` does no SQL and no conversion: a value may be anything `float()` accepts (a Python
    float, a numpy scalar, a 0-d tensor) and is converted at flush time, so a GPU scalar does
    not force a device sync on every step.
    """

    def __init__(self, store: "RunStore", run_id: str, *, flush_rows: int = 512, flush_seconds: float = 2.0):
        if flush_rows < 1:
            raise ValueError("flush_rows must be at least 1")
        self.store = store
        self.run_id = run_id
        self.flush_rows = int(flush_rows)
        self.flush_seconds = float(flush_seconds)
        self._rows: list[tuple] = []
        # The lock lets a callback thread call flush() while the training thread adds; it is
        # uncontended in the usual single-thread case and costs well under a microsecond.
        self._lock = threading.Lock()
        self._last_flush = time.time()
        self.rows_written = 0

    def add(self, step: int, epoch: float | None, key: str, value: Any) -> None:
        now = time.time()
        with self._lock:
            self._rows.append((self.run_id, step, epoch, key, value, now))
            due = len(self._rows) >= self.flush_rows or now - self._last_flush >= self.flush_seconds
        if due:
            self.flush()

    def add_many(self, step: int, epoch: float | None, values: dict[str, Any]) -> None:
        """Several keys logged at the same step (e.g. loss and accuracy), one time stamp."""
        now = time.time()
        with self._lock:
            self._rows.extend((self.run_id, step, epoch, key, value, now) for key, value in values.items())
            due = len(self._rows) >= self.flush_rows or now - self._last_flush >= self.flush_seconds
        if due:
            self.flush()

    def flush(self) -> int:
        """Write every pending row; returns how many. On failure the rows stay pending."""
        with self._lock:
            rows, self._rows = self._rows, []
            self._last_flush = time.time()
        if not rows:
            return 0
        try:
            self.store.log_metrics(rows)
        except BaseException:
            # Put them back in front of anything added meanwhile, so a later flush retries them.
            with self._lock:
                self._rows[:0] = rows
            raise
        self.rows_written += len(rows)
        return len(rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __enter__(self) -> "MetricBuffer":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.flush()
            return
        # Training crashed: still save what it logged before the crash (it helps to see why), but
        # never let a second failure here hide the original exception.
        try:
            self.flush()
        except Exception:
            pass
