"""Live control of a running job: requests to change it (more or fewer epochs, a new learning rate, stop
after this epoch), and once the worker applies one, the step it took effect at and the value it replaced.

A request is accepted only while the run is queued or running (checked and written in one transaction). The
worker applies pending requests between steps; applying one also rewrites the run's stored config (epochs,
learning rate), so the config is always what the run is doing now and a resume honours it, while this table
keeps the history of how it got there.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

from core.errors import ConfigError, LabError, RunNotFound
from core.paths import check_run_id
from core.store.records import ACTIVE_STATUSES, dumps

EPOCHS, LR, STOP_AFTER_EPOCH = "epochs", "lr", "stop_after_epoch"
CONTROL_KINDS = (EPOCHS, LR, STOP_AFTER_EPOCH)
CONFIG_PATHS = {EPOCHS: "$.optim.epochs", LR: "$.optim.lr"}  # the config field each kind rewrites
PENDING = "applied_at IS NULL AND note IS NULL"  # a request the worker may still apply
ENDED_FIRST = "not applied: the run ended first"
CONTROL_COLUMNS = ["id", "run_id", "kind", "value", "requested_at", "applied_at", "step", "epoch", "old_value", "note"]


@dataclass(frozen=True)
class Control:
    id: int
    run_id: str
    kind: str
    value: float | None
    requested_at: float
    applied_at: float | None = None
    step: int | None = None
    epoch: float | None = None
    old_value: float | None = None
    note: str | None = None

    @property
    def applied(self) -> bool:
        return self.applied_at is not None


class ControlTable:
    """The controls half of RunStore (mixed into it, so it shares the store's connection and transactions)."""

    def request_control(self, run_id: str, kind: str, value: float | None = None) -> int:
        """Queue a change for the run's worker; returns the request's id. Refused unless the run is active."""
        check_run_id(run_id)
        if kind not in CONTROL_KINDS:
            raise ConfigError(f"'{kind}' is not a control; use one of: {', '.join(CONTROL_KINDS)}")

        def work(c: sqlite3.Connection) -> int:
            row = c.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise RunNotFound(f"no run with id '{run_id}'")
            if row[0] not in ACTIVE_STATUSES:
                raise LabError(f"run {run_id} is {row[0]}; only a queued or running run can be changed")
            return c.execute("INSERT INTO controls (run_id, kind, value, requested_at) VALUES (?, ?, ?, ?)",
                             (run_id, kind, value, time.time())).lastrowid

        return self._write(work)

    def pending_controls(self, run_id: str) -> list[Control]:
        """Requests the worker has not applied yet, oldest first."""
        return self.controls(run_id, pending_only=True)

    def has_pending_controls(self, run_id: str) -> bool:
        return bool(self._read(f"SELECT 1 FROM controls WHERE run_id = ? AND {PENDING} LIMIT 1",
                               (check_run_id(run_id),)))

    def close_pending_controls(self, run_id: str) -> None:
        """The run ended: requests it never applied stay unapplied, also if it is resumed later (what the page
        told the user)."""
        self._write(lambda c: c.execute(f"UPDATE controls SET note = ? WHERE run_id = ? AND {PENDING}",
                                        (ENDED_FIRST, check_run_id(run_id))))

    def controls(self, run_id: str, *, pending_only: bool = False) -> list[Control]:
        """The run's control requests, oldest first: its config history once applied."""
        sql = f"SELECT {', '.join(CONTROL_COLUMNS)} FROM controls WHERE run_id = ?"
        if pending_only:
            sql += f" AND {PENDING}"
        return [Control(*row) for row in self._read(sql + " ORDER BY id", (check_run_id(run_id),))]

    def apply_control(self, control: Control, *, value: float | None, old_value: float | None, step: int,
                      epoch: float, note: str = "") -> None:
        """Record that the worker applied `control` (with `value`, which may differ from the request, e.g.
        an epoch count raised to the epoch already under way) and rewrite the run's config to match."""

        def work(c: sqlite3.Connection) -> None:
            c.execute("UPDATE controls SET applied_at = ?, value = ?, old_value = ?, step = ?, epoch = ?, note = ? "
                      "WHERE id = ?", (time.time(), value, old_value, int(step), float(epoch), note, control.id))
            path = CONFIG_PATHS.get(control.kind)
            if path:
                shown = int(value) if control.kind == EPOCHS else float(value)
                c.execute(f"UPDATE runs SET config = json_set(config, '{path}', json(?)) WHERE id = ?",
                          (dumps(shown), control.run_id))

        self._write(work)
