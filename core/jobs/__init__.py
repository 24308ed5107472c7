"""Jobs: submit a run to a detached worker process, cancel it, resume it, or run it in this process.

A worker (`python -m core.worker RUN_ID`) survives its caller (an app session, a closed terminal);
it waits for a free device slot, so extra runs stay `queued`. Its output goes to runs/<id>/log.txt.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from core.errors import LabError
from core.paths import LAST_CHECKPOINT as LAST, lab_home, run_dir
from core.store.records import ACTIVE_STATUSES, RESUMABLE_STATUSES
from core.tasks import validate

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _store():
    from core.store import RunStore
    return RunStore()


def create(config) -> str:
    """Validate and record a run as queued; returns its id."""
    validate(config)
    from core.engine.devices import resolve_device
    resolve_device(config.device)  # asking for a GPU this machine lacks fails here, not in the worker
    return _store().create_run(config.to_dict(), name=config.display_name())


def submit(config) -> str:
    """Record the run and start a detached worker for it; returns the run id at once."""
    run_id = create(config)
    spawn_worker(run_id)
    return run_id


def spawn_worker(run_id: str, *, resume: bool = False) -> int:
    log = open(run_dir(run_id, create=True) / "log.txt", "ab")
    env = {**os.environ, "LAB_HOME": str(lab_home()),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "core.worker", run_id] + (["--resume"] if resume else [])
    with log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   cwd=PROJECT_ROOT, env=env, start_new_session=True)
    _store().set_pid(run_id, process.pid)
    return process.pid


def cancel(run_id: str, *, wait_s: float = 30.0) -> str:
    """Ask the worker to stop after its current step (it saves a checkpoint); kill it if it has not
    stopped within `wait_s` seconds. Returns the final status ('cancelling' if wait_s is 0)."""
    from core.store import pid_alive
    store = _store()
    run = store.get_run(run_id)
    if run.status not in ACTIVE_STATUSES:
        raise LabError(f"run {run_id} is {run.status}; only queued or running runs can be cancelled")
    store.request_cancel(run_id)
    deadline = time.time() + wait_s
    while time.time() < deadline:
        status = store.get_run(run_id).status
        if status not in ACTIVE_STATUSES:
            return status
        time.sleep(0.25)
    if wait_s <= 0:
        return "cancelling"
    run = store.get_run(run_id)
    if run.status not in ACTIVE_STATUSES:
        return run.status
    if run.pid and pid_alive(run.pid):
        os.kill(run.pid, signal.SIGKILL)
    if store.get_run(run_id).status in ACTIVE_STATUSES:  # it may have finished on its own in the meantime
        store.finish(run_id, "cancelled", error=f"did not stop within {wait_s:g}s of the cancel request; killed")
    return store.get_run(run_id).status


def resume(run_id: str, *, detach: bool = True, progress: bool = True) -> str:
    """Continue an interrupted or cancelled run from its last checkpoint (same id, same history)."""
    store = _store()
    run = store.get_run(run_id)
    if run.status not in RESUMABLE_STATUSES:
        raise LabError(f"run {run_id} is {run.status}; only interrupted or cancelled runs can be resumed")
    store.clear_cancel(run_id)
    store.set_status(run_id, "queued")
    if detach:
        spawn_worker(run_id, resume=True)
        return "queued"
    from core.jobs.runner import execute_run
    return execute_run(run_id, resume=True, progress=progress)


def has_checkpoint(run_id: str) -> bool:
    return (run_dir(run_id) / LAST).exists()
