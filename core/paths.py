"""Where the lab keeps its state: everything lives under LAB_HOME (default ./.lab)."""

from __future__ import annotations

import errno
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

from core.errors import LabError, RunNotFound, StorageError

RUN_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{5,63}$")
LAST_CHECKPOINT, BEST_CHECKPOINT = "last.pt", "best.pt"  # in each run's folder


FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
DENIED_ERRNOS = (errno.EROFS, errno.EACCES, errno.EPERM)
_WRITABLE_HOMES: set[Path] = set()  # homes this process has already written a probe file into


def lab_home() -> Path:
    """The root of all lab state; read from the environment each call so tests can redirect it."""
    home = Path(os.environ.get("LAB_HOME", ".lab")).expanduser().resolve()
    make_dirs(home)
    return home


def make_dirs(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(exc) from None
    return path


def check_writable_home() -> Path:
    """LAB_HOME, once a probe file could be written there (checked once per process and folder); a
    read-only, foreign or full home raises StorageError with the one sentence that says what to do."""
    home = lab_home()
    if home not in _WRITABLE_HOMES:
        try:
            fd, probe = tempfile.mkstemp(dir=home, prefix=".probe-")
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise storage_error(exc) from None
        _WRITABLE_HOMES.add(home)
    return home


def storage_cause(exc: BaseException) -> OSError | None:
    """The read-only, permission or disk-full OSError behind `exc`, if any. Libraries wrap it (torch.save
    on a full disk raises RuntimeError "unexpected pos" with the ENOSPC as its context), so the chain
    of causes and contexts is searched."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OSError) and exc.errno in FULL_ERRNOS + DENIED_ERRNOS:
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def storage_error(exc: BaseException, *, full: bool | None = None, then: str = "try again") -> StorageError | BaseException:
    """One sentence for a write the lab's home refused: which folder, why, what to do. Returns `exc`
    itself when it is not a storage problem (and `full` does not say it is one)."""
    cause = storage_cause(exc)
    if cause is None and full is None:
        return exc
    home = os.environ.get("LAB_HOME", ".lab")
    where = Path(home).expanduser().resolve()
    if full or (cause is not None and cause.errno in FULL_ERRNOS):
        return StorageError(f"the disk that holds the lab's folder {where} is full: free some space (delete old "
                            f"runs, or empty {where / 'cache'}), then {then}", full=True)
    reason = cause.strerror if cause is not None and cause.strerror else "permission denied"
    return StorageError(f"the lab cannot write to its folder {where} ({reason.lower()}): set LAB_HOME to a "
                        "folder this user can write to, or make that one writable")


def db_path() -> Path:
    return lab_home() / "lab.db"


def cache_dir(*parts: str) -> Path:
    return make_dirs(lab_home().joinpath("cache", *parts))


def runs_root() -> Path:
    return make_dirs(lab_home() / "runs")


def check_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.match(run_id):
        raise RunNotFound(f"'{run_id}' is not a valid run id (lower-case letters, digits and dashes)")
    return run_id


def run_dir(run_id: str, create: bool = False) -> Path:
    """The artifact folder of a run; never outside LAB_HOME/runs, whatever the id holds."""
    root = runs_root()
    path = (root / check_run_id(run_id)).resolve()
    if path.parent != root:
        raise RunNotFound(f"run id '{run_id}' points outside the runs folder")
    if create:
        make_dirs(path)
    return path


def safe_join(root: Path, relative: str) -> Path:
    """Join a user-supplied relative path to root, refusing anything that would escape it."""
    root = Path(root).resolve()
    target = (root / relative).resolve()
    if target != root and root not in target.parents:
        raise LabError(f"path '{relative}' escapes its folder {root}")
    return target


def atomic_write(path: Path, write: Callable[[BinaryIO], object], *, fsync: bool = False) -> Path:
    """`write(handle)` into a temp file beside `path`, then rename it over `path`: a reader sees the
    old file or the whole new one, never half of it. On any failure the temp file is removed and
    the old file stays. `fsync` also survives a power cut (checkpoints)."""
    path = Path(path)
    make_dirs(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise storage_error(exc) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        translated = storage_error(exc)
        if translated is not exc:
            raise translated from None
        raise
    return path
