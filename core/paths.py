"""Where the lab keeps its state: everything lives under LAB_HOME (default ./.lab)."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

from core.errors import LabError, RunNotFound

RUN_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{5,63}$")
LAST_CHECKPOINT, BEST_CHECKPOINT = "last.pt", "best.pt"  # in each run's folder


def lab_home() -> Path:
    """The root of all lab state; read from the environment each call so tests can redirect it."""
    home = Path(os.environ.get("LAB_HOME", ".lab")).expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    return home


def db_path() -> Path:
    return lab_home() / "lab.db"


def cache_dir(*parts: str) -> Path:
    path = lab_home().joinpath("cache", *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def runs_root() -> Path:
    path = lab_home() / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path


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
        path.mkdir(parents=True, exist_ok=True)
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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
