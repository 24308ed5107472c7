"""The run store: one SQLite file (runs, metrics, events) plus one artifact folder per run.

Every process (app sessions, workers, the CLI) makes its own `RunStore`; each thread gets its own
connection, opened on first use. Writes are short `BEGIN IMMEDIATE` transactions, so many workers
and browser sessions can share the file at once (see connection.py for the reasoning).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, TypeVar

from core.errors import ConfigError, LabError, RunNotFound
from core.paths import check_run_id, db_path, run_dir
from core.store.connection import connect, in_write_transaction, retry_busy, storage_failure
from core.store.controls import ControlTable
from core.store.procs import pid_alive
from core.store.sweeps import SweepTable
from core.store.records import (
    ACTIVE_STATUSES, FINAL_STATUSES, INTERRUPTED, INTERRUPTED_MESSAGE, QUEUED, RUN_COLUMNS, RUNNING,
    Run, best_val_acc, check_status, dumps, loads, new_run_id, run_from_row,
)

if TYPE_CHECKING:
    import pandas as pd

T = TypeVar("T")

LIST_COLUMNS = [
    "id", "name", "status", "dataset", "model", "created_at", "started_at", "ended_at",
    "duration_s", "best_val_acc", "device", "tags", "error",
]
METRIC_COLUMNS = ["run_id", "step", "epoch", "key", "value", "time"]
METRIC_DTYPES = {"run_id": "str", "step": "int64", "epoch": "float64", "key": "str", "value": "float64", "time": "float64"}
EVENT_COLUMNS = ["time", "level", "message"]
MAX_NAME_LENGTH = 200
# Ends the current stretch of running at the time given as its parameter.
_END_STRETCH = "active_s = active_s + MAX(0, COALESCE(? - stretch_at, 0)), stretch_at = NULL"
REQUEST_WINDOW_S = 10.0  # a repeated launch request within this many seconds is the same launch

# Connections inherited through os.fork() must be neither used nor closed by the child (SQLite's
# rule); they are parked here so garbage collection never closes them either.
_INHERITED_CONNECTIONS: list[sqlite3.Connection] = []


def stale_after_s() -> float:
    """Seconds without a heartbeat after which a run with a dead worker counts as interrupted."""
    try:
        return float(os.environ.get("LAB_HEARTBEAT_STALE_S", "20"))
    except ValueError:
        return 20.0


class RunStore(ControlTable, SweepTable):
    def __init__(self, path: Path | str | None = None):
        self.path = Path(path) if path is not None else db_path()
        self._local = threading.local()

    # -- plumbing ---------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        local = self._local
        conn = getattr(local, "conn", None)
        if conn is not None and local.pid == os.getpid():
            return conn
        if conn is not None:
            _INHERITED_CONNECTIONS.append(conn)
        local.conn = connect(self.path)
        local.pid = os.getpid()
        return local.conn

    def _read(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        conn = self._conn()
        try:
            return retry_busy(lambda: conn.execute(sql, params).fetchall())
        except sqlite3.OperationalError as error:
            raise _storage_failure(error)

    def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn()
        try:
            return in_write_transaction(conn, work)
        except sqlite3.OperationalError as error:
            raise _storage_failure(error)

    def _update(self, run_id: str, assignments: str, params: tuple) -> None:
        """UPDATE one run's row; an id that names no run raises RunNotFound (and changes nothing)."""
        check_run_id(run_id)

        def work(c: sqlite3.Connection) -> None:
            if c.execute(f"UPDATE runs SET {assignments} WHERE id = ?", (*params, run_id)).rowcount == 0:
                raise RunNotFound(f"no run with id '{run_id}'")

        self._write(work)

    def close(self) -> None:
        """Close this thread's connection (other threads' close when those threads end)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local = threading.local()

    def __getstate__(self) -> dict:
        # Lets a store be handed to a spawned process: only the path travels, never a connection.
        return {"path": self.path}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"])

    def __repr__(self) -> str:
        return f"RunStore({str(self.path)!r})"

    # -- runs -------------------------------------------------------------------------------

    def create_run(self, config: dict, *, name: str, status: str = QUEUED) -> str:
        return self.create_run_once(config, name=name, status=status)[0]

    def create_run_once(self, config: dict, *, name: str, status: str = QUEUED,
                        request_key: str | None = None) -> tuple[str, bool]:
        """Record a run; returns (run id, whether it is new). A run created with the same `request_key`
        in the last REQUEST_WINDOW_S seconds is returned instead of a second one (a double-clicked
        Launch): the look-up and the insert share one write transaction, so two requests racing
        each other still make one run."""
        if not isinstance(config, dict):
            raise ConfigError(f"a run's config must be a dict, got {type(config).__name__}")
        check_status(status)
        name = _clean_name(name)
        try:
            config_json = dumps(config)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"the run config cannot be stored as JSON: {error}") from error
        dataset, model = _section_name(config, "data"), _section_name(config, "model")

        def work(c: sqlite3.Connection) -> tuple[str, bool] | None:
            now = time.time()
            if request_key is not None:
                same = c.execute("SELECT id FROM runs WHERE request_key = ? AND created_at > ? "
                                 "ORDER BY created_at DESC LIMIT 1", (request_key, now - REQUEST_WINDOW_S)).fetchone()
                if same:
                    return same[0], False
            run_id = new_run_id()
            try:
                c.execute("INSERT INTO runs (id, name, status, dataset, model, created_at, config, request_key) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                          (run_id, name, status, dataset, model, now, config_json, request_key))
            except sqlite3.IntegrityError:
                return None  # same second and same 4 random characters: draw another id
            return run_id, True

        for _ in range(10):
            created = self._write(work)
            if created is not None:
                run_dir(created[0], create=True)
                return created
        raise LabError("could not find a free run id; try again")

    def claim(self, run_id: str, *, statuses: Iterable[str], assignments: str, params: tuple = ()) -> bool:
        """UPDATE the run only if its status is still one of `statuses`, in one write transaction; returns
        whether it was. Two processes claiming the same run (two resumes, a resume and a cancel) cannot
        both win: the second finds the status the first one set."""
        check_run_id(run_id)
        wanted = [check_status(s) for s in statuses]

        def work(c: sqlite3.Connection) -> bool:
            cursor = c.execute(f"UPDATE runs SET {assignments} WHERE id = ? AND status IN "
                               "(SELECT value FROM json_each(?))", (*params, run_id, dumps(wanted)))
            if cursor.rowcount == 0 and c.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
                raise RunNotFound(f"no run with id '{run_id}'")
            return cursor.rowcount == 1

        return self._write(work)

    def get_run(self, run_id: str) -> Run:
        check_run_id(run_id)
        self.reap_stale()
        rows = self._read(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE id = ?", (run_id,))
        if not rows:
            raise RunNotFound(f"no run with id '{run_id}'")
        return run_from_row(rows[0])

    def get_runs(self, run_ids: list[str] | None = None, *, statuses: Iterable[str] | None = None,
                 limit: int | None = None) -> dict[str, Run]:
        """Many runs (all when run_ids is None) in one query, newest first; unknown ids are left out.
        Needs no pandas, so the first page can list runs before pandas is imported."""
        self.reap_stale()
        sql = f"SELECT {', '.join(RUN_COLUMNS)} FROM runs"
        where, params = [], []
        if run_ids is not None:
            where.append("id IN (SELECT value FROM json_each(?))")
            params.append(dumps([check_run_id(r) for r in run_ids]))
        if statuses is not None:
            where.append("status IN (SELECT value FROM json_each(?))")
            params.append(dumps([check_status(s) for s in statuses]))
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        rows = self._read(sql, params)
        return {run.id: run for run in map(run_from_row, rows)}

    def count_runs(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM runs")[0][0])

    def list_runs(self, status: str | None = None) -> pd.DataFrame:
        """One row per run, newest first (see LIST_COLUMNS); an empty frame when there are none."""
        self.reap_stale()
        sql = f"SELECT {', '.join(RUN_COLUMNS)} FROM runs"
        params: tuple = ()
        if status is not None:
            sql += " WHERE status = ?"
            params = (check_status(status),)
        runs = [run_from_row(row) for row in self._read(sql + " ORDER BY created_at DESC, id DESC", params)]
        records = [
            (r.id, r.name, r.status, r.dataset, r.model, r.created_at, r.started_at, r.ended_at,
             r.duration_s, best_val_acc(r.summary), r.device, r.tags, r.error)
            for r in runs
        ]
        import pandas as pd
        frame = pd.DataFrame.from_records(records, columns=LIST_COLUMNS)
        # Same dtypes whether or not there are rows, so callers can sort and format blindly.
        floats = ["created_at", "started_at", "ended_at", "duration_s", "best_val_acc"]
        return frame.astype({column: "float64" for column in floats})

    def mark_running(self, run_id: str, *, pid: int, device: str, versions: dict) -> None:
        now = time.time()
        # ended_at and error are cleared because a resumed run is running again, not finished.
        self._update(
            run_id,
            "status = ?, started_at = COALESCE(started_at, ?), ended_at = NULL, heartbeat = ?, "
            "error = NULL, pid = ?, device = ?, versions = ?, stretch_at = ?",
            (RUNNING, now, now, int(pid), str(device), dumps(versions or {}), now),
        )

    def set_pid(self, run_id: str, pid: int) -> None:
        # The heartbeat restarts with the new worker: it gets a full grace period to start up
        # before a crash of it could be mistaken for an old, stale heartbeat.
        self._update(run_id, "pid = ?, heartbeat = ?", (int(pid), time.time()))

    def finish(self, run_id: str, status: str, *, error: str | None = None) -> None:
        check_status(status, FINAL_STATUSES)
        now = time.time()
        self._update(run_id, f"status = ?, ended_at = ?, error = ?, {_END_STRETCH}", (status, now, error, now))
        self.close_pending_controls(run_id)

    def set_status(self, run_id: str, status: str) -> None:
        """Set any status, keeping the time columns coherent with it.

        Back to `queued` (e.g. resuming) forgets the old worker (pid, heartbeat), end time and
        error, so the stale-run reaper does not judge the new attempt by the old worker.
        """
        check_status(status)
        now = time.time()
        if status == QUEUED:
            self._update(run_id, "status = ?, ended_at = NULL, error = NULL, pid = NULL, heartbeat = NULL", (status,))
        elif status == RUNNING:
            self._update(run_id, "status = ?, started_at = COALESCE(started_at, ?), ended_at = NULL", (status, now))
        else:
            self._update(run_id, "status = ?, ended_at = ?", (status, now))

    def update_summary(self, run_id: str, summary: dict) -> None:
        """Merge `summary` into the run's summary (new keys win); read and write in one transaction."""
        check_run_id(run_id)
        if not isinstance(summary, dict):
            raise TypeError("summary must be a dict")

        def work(c: sqlite3.Connection) -> None:
            row = c.execute("SELECT summary FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise RunNotFound(f"no run with id '{run_id}'")
            merged = {**loads(row[0], {}), **summary}
            c.execute("UPDATE runs SET summary = ? WHERE id = ?", (dumps(merged), run_id))

        self._write(work)

    def heartbeat(self, run_id: str) -> bool:
        """Record that the worker is alive; returns whether the user asked it to stop."""
        check_run_id(run_id)

        def work(c: sqlite3.Connection) -> bool:
            if c.execute("UPDATE runs SET heartbeat = ? WHERE id = ?", (time.time(), run_id)).rowcount == 0:
                raise RunNotFound(f"no run with id '{run_id}'")
            return bool(c.execute("SELECT cancel_requested FROM runs WHERE id = ?", (run_id,)).fetchone()[0])

        return self._write(work)

    def request_cancel(self, run_id: str) -> bool:
        """Ask an active run to stop; False (and nothing changed) when the run is no longer active."""
        return self.claim(run_id, statuses=ACTIVE_STATUSES, assignments="cancel_requested = 1")

    def claim_for_resume(self, run_id: str, statuses: Iterable[str]) -> bool:
        """Move a settled run back to `queued` for a new worker (forgetting the old worker, end time, error
        and cancel request) if it is still in one of `statuses`; False when another caller got there first."""
        return self.claim(run_id, statuses=statuses, assignments="status = ?, ended_at = NULL, error = NULL, "
                          "pid = NULL, heartbeat = NULL, cancel_requested = 0", params=(QUEUED,))

    def rename(self, run_id: str, name: str) -> None:
        self._update(run_id, "name = ?", (_clean_name(name),))

    def set_tags(self, run_id: str, tags: list[str]) -> None:
        if isinstance(tags, str) or not all(isinstance(tag, str) for tag in tags):
            raise ConfigError("tags must be a list of strings")
        cleaned = list(dict.fromkeys(tag.strip() for tag in tags if tag.strip()))  # dedupe, keep order
        self._update(run_id, "tags = ?", (dumps(cleaned),))

    def set_notes(self, run_id: str, notes: str) -> None:
        self._update(run_id, "notes = ?", (str(notes or ""),))

    def delete_run(self, run_id: str) -> None:
        """Delete the run's rows in every table and its artifact folder."""
        check_run_id(run_id)

        def work(c: sqlite3.Connection) -> int:
            deleted = c.execute("DELETE FROM runs WHERE id = ?", (run_id,)).rowcount
            c.execute("DELETE FROM metrics WHERE run_id = ?", (run_id,))
            c.execute("DELETE FROM events WHERE run_id = ?", (run_id,))
            c.execute("DELETE FROM controls WHERE run_id = ?", (run_id,))
            c.execute("DELETE FROM sweep_runs WHERE run_id = ?", (run_id,))
            return deleted

        deleted = self._write(work)
        folder = run_dir(run_id)  # resolved and checked to lie directly inside LAB_HOME/runs
        had_folder = folder.is_dir()
        if had_folder:
            shutil.rmtree(folder)
        if not deleted and not had_folder:
            raise RunNotFound(f"no run with id '{run_id}'")

    def reap_stale(self) -> list[str]:
        """Mark as interrupted the active runs whose worker is gone and whose heartbeat is stale."""
        cutoff = time.time() - stale_after_s()
        # Healthy runs are filtered out by the heartbeat test in SQL, so usually no pid is probed.
        candidates = self._read(
            "SELECT id, pid, COALESCE(heartbeat, created_at) FROM runs WHERE status IN (?, ?) AND pid IS NOT NULL "
            "AND COALESCE(heartbeat, created_at) < ?",
            (*ACTIVE_STATUSES, cutoff),
        )
        heartbeats = {run_id: float(seen) for run_id, _, seen in candidates}
        dead = [(run_id, pid) for run_id, pid, _ in candidates if not pid_alive(pid)]
        if not dead:
            return []

        def work(c: sqlite3.Connection) -> list[str]:
            reaped = []
            for run_id, pid in dead:
                # Re-check under the write lock: a new worker may have taken the run over since.
                cursor = c.execute(
                    # the stretch ends at the last heartbeat: when the worker was last seen alive
                    f"UPDATE runs SET status = ?, ended_at = ?, error = ?, {_END_STRETCH} WHERE id = ? AND pid = ? "
                    "AND status IN (?, ?) AND COALESCE(heartbeat, created_at) < ?",
                    (INTERRUPTED, time.time(), INTERRUPTED_MESSAGE, heartbeats[run_id], run_id, pid,
                     *ACTIVE_STATUSES, cutoff),
                )
                if cursor.rowcount:
                    reaped.append(run_id)
            return reaped

        return self._write(work)

    # -- metrics and events -----------------------------------------------------------------

    def log_metrics(self, rows: Iterable[tuple]) -> None:
        """Insert (run_id, step, epoch, key, value, time) rows in one transaction."""
        clean = [
            (run_id, int(step), None if epoch is None else float(epoch), str(key), float(value), float(t))
            for run_id, step, epoch, key, value, t in rows
        ]
        if not clean:
            return
        for run_id in {row[0] for row in clean}:
            check_run_id(run_id)
        self._write(lambda c: c.executemany(
            "INSERT INTO metrics (run_id, step, epoch, key, value, time) VALUES (?, ?, ?, ?, ?, ?)", clean))

    def delete_metrics_after(self, run_id: str, step: int) -> int:
        """Drop rows logged after `step` (resuming from a checkpoint at that step); returns how many."""
        check_run_id(run_id)
        return self._write(lambda c: c.execute(
            "DELETE FROM metrics WHERE run_id = ? AND step > ?", (run_id, int(step))).rowcount)

    def metrics(self, run_ids: str | list[str], keys: list[str] | None = None) -> pd.DataFrame:
        """Metric rows of one or many runs in one query, sorted by run_id, key, step."""
        ids = [run_ids] if isinstance(run_ids, str) else list(run_ids)
        for run_id in ids:
            check_run_id(run_id)
        if not ids or (keys is not None and not list(keys)):
            return _frame([], METRIC_COLUMNS, METRIC_DTYPES)
        # json_each turns one JSON parameter into a list, so any number of ids is still one query
        # (no "too many SQL variables") and the (run_id, key, step) index serves both filter and sort.
        sql = "SELECT run_id, step, epoch, key, value, time FROM metrics WHERE run_id IN (SELECT value FROM json_each(?))"
        params: list[Any] = [json.dumps(ids)]
        if keys is not None:
            sql += " AND key IN (SELECT value FROM json_each(?))"
            params.append(json.dumps([str(key) for key in keys]))
        rows = self._read(sql + " ORDER BY run_id, key, step, rowid", params)
        return _frame(rows, METRIC_COLUMNS, METRIC_DTYPES)

    def metric_series(self, run_ids: list[str], keys: list[str]) -> dict[str, dict[str, list[float]]]:
        """{run_id: {key: values in step order}} without pandas: for sparklines on the first page."""
        ids = [check_run_id(r) for r in run_ids]
        if not ids or not keys:
            return {}
        rows = self._read("SELECT run_id, key, value FROM metrics WHERE run_id IN (SELECT value FROM json_each(?)) "
                          "AND key IN (SELECT value FROM json_each(?)) ORDER BY run_id, key, step, rowid",
                          [json.dumps(ids), json.dumps([str(k) for k in keys])])
        series: dict[str, dict[str, list[float]]] = {}
        for run_id, key, value in rows:
            series.setdefault(run_id, {}).setdefault(key, []).append(float(value))
        return series

    def metric_keys(self, run_ids: list[str]) -> list[str]:
        """The metric keys the first few of these runs logged, sorted (an index look-up per run)."""
        keys: set[str] = set()
        for run_id in run_ids[:5]:
            keys.update(row[0] for row in self._read("SELECT DISTINCT key FROM metrics WHERE run_id = ?",
                                                     [check_run_id(run_id)]))
        return sorted(keys)

    def metric_stats(self, run_ids: list[str], key: str, mode: str) -> pd.DataFrame:
        """Per run, computed in SQLite over the full history: best (max or min by `mode`) with its step
        and epoch, last, min, max and count."""
        ids = json.dumps([check_run_id(r) for r in run_ids])
        pick = "MAX" if mode == "max" else "MIN"
        where = "WHERE run_id IN (SELECT value FROM json_each(?)) AND key = ? AND value IS NOT NULL GROUP BY run_id"
        # a lone MAX()/MIN() makes SQLite take the bare step and epoch from the row that holds it
        best = self._read(f"SELECT run_id, {pick}(value), step, epoch, COUNT(value) FROM metrics {where}", [ids, key])
        spread = self._read(f"SELECT run_id, MIN(value), MAX(value) FROM metrics {where}", [ids, key])
        last = [(run_id,) + self._read("SELECT value FROM metrics WHERE run_id = ? AND key = ? "
                                       "ORDER BY step DESC LIMIT 1", [run_id, key])[0] for run_id, *_ in best]
        import pandas as pd
        frame = pd.DataFrame.from_records(best, columns=["run_id", "best", "step_of_best", "epoch_of_best", "count"])
        frame = frame.merge(pd.DataFrame.from_records(spread, columns=["run_id", "min", "max"]), on="run_id")
        frame = frame.merge(pd.DataFrame.from_records(last, columns=["run_id", "last"]), on="run_id")
        return frame[["run_id", "best", "last", "min", "max", "step_of_best", "epoch_of_best", "count"]]

    def metric_sample(self, run_ids: list[str], key: str, stride: int = 1,
                      thin: list[str] | None = None) -> pd.DataFrame:
        """One metric of many runs; for the runs in `thin`, only rows whose step is a multiple of `stride`.

        Thinning happens inside SQLite, so a chart of 100 runs x 5,000 steps moves a tenth of the rows
        into Python. Callers pass a prime stride, so that steps logged every `log_every` steps are
        still thinned evenly (unless log_every is itself a multiple of the stride: then all rows stay).
        """
        ids = json.dumps([check_run_id(r) for r in run_ids])
        thin_ids = json.dumps(list(thin or []))
        rows = self._read("SELECT run_id, step, epoch, value, time FROM metrics WHERE run_id IN "
                          "(SELECT value FROM json_each(?)) AND key = ? AND (step % ? = 0 OR run_id NOT IN "
                          "(SELECT value FROM json_each(?))) ORDER BY run_id, step",
                          [ids, key, int(stride), thin_ids])
        return _frame(rows, ["run_id", "step", "epoch", "value", "time"],
                      {"step": "int64", "epoch": "float64", "value": "float64", "time": "float64"})

    def last_metrics(self, run_id: str) -> dict[str, float]:
        """The value at the highest step of each key."""
        check_run_id(run_id)
        # SQLite guarantees that bare columns next to MAX() come from the row holding the maximum.
        rows = self._read("SELECT key, value, MAX(step) FROM metrics WHERE run_id = ? GROUP BY key", (run_id,))
        return {key: float("nan") if value is None else float(value) for key, value, _ in rows}

    def log_event(self, run_id: str, message: str, level: str = "info") -> None:
        check_run_id(run_id)
        row = (run_id, time.time(), str(level).lower(), str(message))
        self._write(lambda c: c.execute("INSERT INTO events (run_id, time, level, message) VALUES (?, ?, ?, ?)", row))

    def events(self, run_id: str) -> pd.DataFrame:
        check_run_id(run_id)
        rows = self._read("SELECT time, level, message FROM events WHERE run_id = ? ORDER BY time, rowid", (run_id,))
        return _frame(rows, EVENT_COLUMNS, {"time": "float64", "level": "str", "message": "str"})


def _storage_failure(error: sqlite3.OperationalError) -> BaseException:
    """A read-only or full LAB_HOME as one sentence (the SQLite error is kept as the cause for logs)."""
    translated = storage_failure(error)
    if translated is not error:
        translated.__cause__ = error
    return translated


def _frame(rows: list[tuple], columns: list[str], dtypes: dict[str, str]) -> pd.DataFrame:
    import pandas as pd
    return pd.DataFrame.from_records(rows, columns=columns).astype(dtypes)


def _clean_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("a run name must be a non-empty string")
    name = name.strip()
    if len(name) > MAX_NAME_LENGTH:
        raise ConfigError(f"a run name may have at most {MAX_NAME_LENGTH} characters (got {len(name)})")
    return name


def _section_name(config: dict, section: str) -> str | None:
    part = config.get(section)
    name = part.get("name") if isinstance(part, dict) else None
    return None if name is None else str(name)
