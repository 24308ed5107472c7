"""Sweeps in the run store: a search over configs (grid, random or Optuna's TPE), and the runs it made.

A sweep's runs are ordinary runs, queued and trained like any other; `sweep_runs` says which sweep and
which trial each one is, with the parameters that trial set.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field

from core.errors import LabError
from core.paths import check_run_id
from core.store.records import dumps, loads, new_run_id

SWEEP_COLUMNS = ["id", "name", "created_at", "method", "space", "base_config", "metric", "mode", "trials",
                 "status", "pid", "error"]
SWEEP_STATUSES = ("running", "completed", "cancelled", "failed", "submitted")


@dataclass(frozen=True)
class Sweep:
    id: str
    name: str
    created_at: float
    method: str  # grid, random or optuna
    space: dict  # key -> {"choices": [...]} or {"low", "high", "log", "integer"}
    base_config: dict
    metric: str
    mode: str  # max or min
    trials: int
    status: str
    pid: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class SweepRun:
    sweep_id: str
    run_id: str
    trial: int
    params: dict = field(default_factory=dict)


def _sweep(row: tuple) -> Sweep:
    values = dict(zip(SWEEP_COLUMNS, row))
    values["space"], values["base_config"] = loads(values["space"], {}), loads(values["base_config"], {})
    return Sweep(**values)


def check_sweep_id(sweep_id: str) -> str:
    return check_run_id(sweep_id)  # the same readable, sortable shape as run ids


class SweepTable:
    """The sweeps half of RunStore (mixed into it, sharing its connection and transactions)."""

    def create_sweep(self, *, name: str, method: str, space: dict, base_config: dict, metric: str, mode: str,
                     trials: int, status: str) -> str:
        def work(c: sqlite3.Connection) -> str | None:
            sweep_id = new_run_id()
            try:
                c.execute("INSERT INTO sweeps (id, name, created_at, method, space, base_config, metric, mode, "
                          "trials, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          (sweep_id, name, time.time(), method, dumps(space), dumps(base_config), metric, mode,
                           int(trials), status))
            except sqlite3.IntegrityError:
                return None  # the same second and random suffix: draw again
            return sweep_id

        for _ in range(10):
            created = self._write(work)
            if created:
                return created
        raise LabError("could not find a free sweep id; try again")

    def get_sweep(self, sweep_id: str) -> Sweep:
        rows = self._read(f"SELECT {', '.join(SWEEP_COLUMNS)} FROM sweeps WHERE id = ?", (check_sweep_id(sweep_id),))
        if not rows:
            raise LabError(f"no sweep with id '{sweep_id}'; `python -m core sweeps list` shows them")
        return _sweep(rows[0])

    def list_sweeps(self) -> list[Sweep]:
        rows = self._read(f"SELECT {', '.join(SWEEP_COLUMNS)} FROM sweeps ORDER BY created_at DESC, id DESC")
        return [_sweep(row) for row in rows]

    def set_sweep_status(self, sweep_id: str, status: str, *, error: str | None = None, pid: int | None = None) -> None:
        if status not in SWEEP_STATUSES:
            raise LabError(f"'{status}' is not a sweep status")
        # a cancelled sweep stays cancelled: a driver starting or finishing late must not revive it
        self._write(lambda c: c.execute("UPDATE sweeps SET status = ?, error = ?, pid = COALESCE(?, pid) WHERE id = ? "
                                        "AND status != 'cancelled'", (status, error, pid, check_sweep_id(sweep_id))))

    def cancel_sweep_request(self, sweep_id: str) -> bool:
        """Mark a running sweep cancelled (its driver stops asking for trials); False if it had already ended."""
        check_sweep_id(sweep_id)
        return bool(self._write(lambda c: c.execute(
            "UPDATE sweeps SET status = 'cancelled' WHERE id = ? AND status IN ('running', 'submitted')",
            (sweep_id,)).rowcount))

    def add_sweep_run(self, sweep_id: str, run_id: str, trial: int, params: dict) -> None:
        self._write(lambda c: c.execute("INSERT INTO sweep_runs (sweep_id, run_id, trial, params) VALUES (?, ?, ?, ?)",
                                        (check_sweep_id(sweep_id), check_run_id(run_id), int(trial), dumps(params))))

    def sweep_runs(self, sweep_id: str) -> list[SweepRun]:
        rows = self._read("SELECT sweep_id, run_id, trial, params FROM sweep_runs WHERE sweep_id = ? ORDER BY trial",
                          (check_sweep_id(sweep_id),))
        return [SweepRun(s, r, int(t), loads(p, {})) for s, r, t, p in rows]

    def sweep_of(self, run_id: str) -> SweepRun | None:
        rows = self._read("SELECT sweep_id, run_id, trial, params FROM sweep_runs WHERE run_id = ?",
                          (check_run_id(run_id),))
        return SweepRun(rows[0][0], rows[0][1], int(rows[0][2]), loads(rows[0][3], {})) if rows else None
