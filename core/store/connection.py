"""SQLite plumbing for the run store: opening connections, the schema and its migrations, retries.

Why it is set up this way:
- WAL journal: readers (every open browser tab polls the store) never block the writer, and the
  writer never blocks readers; only writers queue behind each other.
- busy_timeout of 30 s: a writer that finds the write lock taken waits inside SQLite instead of
  failing at once with "database is locked".
- `BEGIN IMMEDIATE` for every write: the write lock is taken up front. A deferred transaction
  that reads first and then writes can be refused without waiting (SQLite cannot upgrade its
  read snapshot when another writer committed in between), which is the usual source of
  "database is locked" despite a busy timeout.
- A short retry loop on top, as a last resort for the few paths where SQLite reports busy
  without calling the busy handler (switching journal mode, WAL recovery after a crash).
"""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path
from typing import Callable, TypeVar

from core.errors import LabError
from core.paths import storage_error

T = TypeVar("T")

BUSY_TIMEOUT_S = 30.0
RETRY_ATTEMPTS = 6

# Bump SCHEMA_VERSION and append to MIGRATIONS (keyed by the version they upgrade *to*) when the
# schema changes; `ensure_schema` applies the missing steps in one transaction.
SCHEMA_VERSION = 4

SCHEMA_V1 = (
    """
    CREATE TABLE IF NOT EXISTS runs (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        dataset TEXT,
        model TEXT,
        created_at REAL NOT NULL,
        started_at REAL,
        ended_at REAL,
        config TEXT NOT NULL DEFAULT '{}',
        summary TEXT NOT NULL DEFAULT '{}',
        tags TEXT NOT NULL DEFAULT '[]',
        notes TEXT NOT NULL DEFAULT '',
        error TEXT,
        device TEXT,
        versions TEXT NOT NULL DEFAULT '{}',
        pid INTEGER,
        heartbeat REAL,
        cancel_requested INTEGER NOT NULL DEFAULT 0
    )
    """,
    "CREATE INDEX IF NOT EXISTS runs_status ON runs (status)",
    "CREATE INDEX IF NOT EXISTS runs_created ON runs (created_at)",
    """
    CREATE TABLE IF NOT EXISTS metrics (
        run_id TEXT NOT NULL,
        step INTEGER NOT NULL,
        epoch REAL,
        key TEXT NOT NULL,
        value REAL,
        time REAL NOT NULL
    )
    """,
    # Serves the per-run chart queries, last value per key and delete-after-step on resume.
    "CREATE INDEX IF NOT EXISTS metrics_run_key_step ON metrics (run_id, key, step)",
    """
    CREATE TABLE IF NOT EXISTS events (
        run_id TEXT NOT NULL,
        time REAL NOT NULL,
        level TEXT NOT NULL,
        message TEXT NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS events_run_time ON events (run_id, time)",
)

# v2: a launch's request key, so that a double-clicked Launch (the same request twice) makes one run.
SCHEMA_V2 = (
    "ALTER TABLE runs ADD COLUMN request_key TEXT",
    "CREATE INDEX IF NOT EXISTS runs_request_key ON runs (request_key)",
)

# v3: a run's time spent running, over all its stretches (a cancelled-then-resumed run's pause does not count):
# active_s sums the finished stretches, stretch_at is when the current one began (NULL when not running).
SCHEMA_V3 = (
    "ALTER TABLE runs ADD COLUMN active_s REAL NOT NULL DEFAULT 0",
    "ALTER TABLE runs ADD COLUMN stretch_at REAL",
    "UPDATE runs SET active_s = MAX(0, COALESCE(ended_at, started_at) - started_at) WHERE started_at IS NOT NULL",
    "UPDATE runs SET stretch_at = started_at WHERE status = 'running'",
)

# v4: live control of a running job (requests, and once applied, the step they took effect at and the value
# they replaced: the run's config history), and sweeps (a search over configs) with the runs they made.
SCHEMA_V4 = (
    """
    CREATE TABLE IF NOT EXISTS controls (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        value REAL,
        requested_at REAL NOT NULL,
        applied_at REAL,
        step INTEGER,
        epoch REAL,
        old_value REAL,
        note TEXT
    )
    """,
    "CREATE INDEX IF NOT EXISTS controls_run ON controls (run_id, id)",
    """
    CREATE TABLE IF NOT EXISTS sweeps (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        created_at REAL NOT NULL,
        method TEXT NOT NULL,
        space TEXT NOT NULL DEFAULT '{}',
        base_config TEXT NOT NULL DEFAULT '{}',
        metric TEXT NOT NULL,
        mode TEXT NOT NULL,
        trials INTEGER NOT NULL,
        status TEXT NOT NULL,
        pid INTEGER,
        error TEXT
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS sweep_runs (
        sweep_id TEXT NOT NULL,
        run_id TEXT NOT NULL,
        trial INTEGER NOT NULL,
        params TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (sweep_id, run_id)
    )
    """,
    "CREATE INDEX IF NOT EXISTS sweep_runs_run ON sweep_runs (run_id)",
)

MIGRATIONS: dict[int, tuple[str, ...]] = {1: SCHEMA_V1, 2: SCHEMA_V2, 3: SCHEMA_V3, 4: SCHEMA_V4}


def is_busy(error: BaseException) -> bool:
    message = str(error).lower()
    return isinstance(error, sqlite3.OperationalError) and ("locked" in message or "busy" in message)


_FULL_MESSAGES = ("database or disk is full",)
_DENIED_MESSAGES = ("unable to open database file", "readonly database", "read-only file system",
                    "permission denied")


def storage_failure(error: BaseException) -> BaseException:
    """A StorageError (one sentence: which folder, what to do) for SQLite's ways of saying that LAB_HOME
    cannot be written or is full; any other error is returned as it is."""
    if not isinstance(error, sqlite3.OperationalError):
        return storage_error(error)
    message = str(error).lower()
    if any(text in message for text in _FULL_MESSAGES):
        return storage_error(error, full=True)
    if any(text in message for text in _DENIED_MESSAGES):
        return storage_error(error, full=False)
    return error


def retry_busy(work: Callable[[], T], attempts: int = RETRY_ATTEMPTS) -> T:
    """Run `work`, retrying with jittered back-off while SQLite says the database is busy."""
    for attempt in range(attempts):
        try:
            return work()
        except sqlite3.OperationalError as error:
            if not is_busy(error) or attempt == attempts - 1:
                raise
            # Jitter so that processes refused together do not all come back together.
            time.sleep(min(1.0, 0.02 * 2**attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")


def in_write_transaction(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """Run `work(conn)` inside BEGIN IMMEDIATE ... COMMIT, retrying the whole transaction if busy.

    `work` must only touch the database (no side effects outside it), since it may run again.
    """

    def attempt() -> T:
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = work(conn)
            conn.execute("COMMIT")
            return result
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    return retry_busy(attempt)


def connect(path: Path) -> sqlite3.Connection:
    """Open a connection in autocommit mode (we issue BEGIN ourselves), in WAL, with the schema."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: the sqlite3 module must not open transactions behind our back.
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None)
    except (OSError, sqlite3.OperationalError) as error:
        raise storage_failure(error) from None
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        _enable_wal(conn)
        # NORMAL is durable against a crashed process in WAL mode; only an OS crash or power cut
        # may lose the last commits, a fair price for not fsyncing on every metric batch.
        conn.execute("PRAGMA synchronous = NORMAL")
        ensure_schema(conn)
    except BaseException as error:
        conn.close()
        translated = storage_failure(error)
        if translated is not error:
            raise translated from None
        raise
    return conn


def _enable_wal(conn: sqlite3.Connection) -> None:
    # WAL is a property of the file: once one connection switched it, later ones only read it.
    mode = retry_busy(lambda: conn.execute("PRAGMA journal_mode").fetchone()[0])
    if str(mode).lower() == "wal":
        return
    mode = retry_busy(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone()[0], attempts=12)
    if str(mode).lower() != "wal":
        raise LabError(f"the run database could not be switched to WAL mode (it stays in {mode!r})")


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create or upgrade the tables; cheap when the file is already at SCHEMA_VERSION."""
    if _user_version(conn) == SCHEMA_VERSION:
        return

    def upgrade(c: sqlite3.Connection) -> None:
        # Read again under the write lock: another process may have just done the upgrade.
        version = _user_version(c)
        if version > SCHEMA_VERSION:
            raise LabError(
                f"the run database was written by a newer version of the lab (schema {version}, "
                f"this code knows {SCHEMA_VERSION}); update the code"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[target]:
                c.execute(statement)
        # PRAGMA does not take parameters; the value is our own integer constant.
        c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    in_write_transaction(conn, upgrade)


def _user_version(conn: sqlite3.Connection) -> int:
    return int(retry_busy(lambda: conn.execute("PRAGMA user_version").fetchone()[0]))
