"""What every tool checks of the run it works on, said the same way by all of them."""

from __future__ import annotations

from core.errors import LabError


def check_finished(run_id: str, doing: str):
    """The store's record of a run that has stopped, or a LabError: unknown (RunNotFound) or still queued or running
    ("run X is running; attack it once it has finished", with `doing` = "attack")."""
    from core.store import ACTIVE_STATUSES, RunStore
    run = RunStore().get_run(run_id)  # RunNotFound for unknown or malformed ids
    if run.status in ACTIVE_STATUSES:
        raise LabError(f"run {run_id} is {run.status}; {doing} it once it has finished")
    return run


def checkpoint_identity(run_id: str, which: str) -> dict:
    """mtime and size of the run's best or last checkpoint: a stored result made from another one is stale."""
    from core.tasks.checkpoints import checkpoint_path
    stat = checkpoint_path(run_id, which).stat()
    return {"mtime_ns": stat.st_mtime_ns, "size": stat.st_size}
