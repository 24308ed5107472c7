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

from core.errors import LabError, describe_exception
from core.paths import LAST_CHECKPOINT as LAST, lab_home, run_dir
from core.store.records import ACTIVE_STATUSES, RESUMABLE_STATUSES
from core.tasks import check_ready, pin_image_size, validate

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _store():
    from core.store import RunStore
    return RunStore()


def create(config) -> str:
    """Validate and record a run as queued; returns its id."""
    return _create_once(config, request_key=None)[0]


def _create_once(config, *, request_key: str | None) -> tuple[str, bool]:
    config = pin_image_size(validate(config))  # a folder's native size, stored with the run
    from core.engine.devices import resolve_device
    resolve_device(config.device)  # asking for a GPU this machine lacks fails here, not in the worker
    check_ready(config)  # more GPUs than there are; pretrained weights neither cached nor downloadable
    from core.tasks.memory import check_memory
    check_memory(config)  # a batch that cannot fit is refused here, not by the allocator mid-run
    store = _store()
    run_id, new = store.create_run_once(config.to_dict(), name=config.display_name(), request_key=request_key)
    if new:
        from core.tasks.cost import seconds_per_step
        estimate = seconds_per_step(config)
        if estimate:  # the live view's ETA until the run's own first steps give it a pace
            store.update_summary(run_id, {"estimated_seconds_per_step": estimate})
    return run_id, new


def submit(config, *, request_key: str | None = None) -> str:
    """Record the run and start a detached worker for it; returns the run id at once. The same
    `request_key` again within a few seconds (a double-clicked Launch) returns the first run instead."""
    run_id, new = _create_once(config, request_key=request_key)
    if new:
        spawn_worker(run_id)
    return run_id


def device_slot_of(config) -> str:
    """The job slots the run's device may take ('cpu', 'mps'; a GPU run any free GPU, 'cuda0,cuda1,...', or the
    one it names, 'cuda2'), decided here so that the worker can wait for them without importing torch."""
    from core.engine.devices import resolve_device, slot_name
    device = resolve_device(config.device)
    if device.type == "cuda" and device.index is None:
        import torch
        return ",".join(f"cuda{index}" for index in range(torch.cuda.device_count()))
    return slot_name(device)


def spawn_worker(run_id: str, *, resume: bool = False) -> int:
    """Start the worker. It queues behind the workers spawned before it (its ticket is the time of this
    call) and waits for its device's slot as a small process, importing torch only once it has one."""
    from core.config import RunConfig
    slot = device_slot_of(RunConfig.from_dict(_store().get_run(run_id).config))
    log = open(run_dir(run_id, create=True) / "log.txt", "ab")
    env = {**os.environ, "LAB_HOME": str(lab_home()),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "core.worker", run_id, "--slot", slot, "--ticket", str(time.time_ns())]
    command += ["--resume"] if resume else []
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
    if not store.request_cancel(run_id):  # checked and set in one transaction
        raise LabError(f"run {run_id} is {store.get_run(run_id).status}; only queued or running runs can be cancelled")
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
    if not store.claim_for_resume(run_id, RESUMABLE_STATUSES):  # checked and set in one transaction
        status = store.get_run(run_id).status
        if status in ACTIVE_STATUSES:
            raise LabError(f"run {run_id} is already {status}: it was resumed a moment ago, or never stopped")
        raise LabError(f"run {run_id} is {status}; only interrupted or cancelled runs can be resumed")
    if detach:
        try:
            spawn_worker(run_id, resume=True)
        except Exception as exc:  # e.g. its GPU is gone: the run goes back to resumable, not queued forever
            store.finish(run_id, "interrupted", error=describe_exception(exc))
            raise
        return "queued"
    from core.jobs.runner import execute_run
    return execute_run(run_id, resume=True, progress=progress)


def delete_run(run_id: str) -> None:
    """Delete a settled run (rows, artifacts), and the file it was trained on when that was an upload no
    other run names, with its unpacked copies."""
    store = _store()
    run = store.get_run(run_id)
    if run.status in ACTIVE_STATUSES:
        raise LabError(f"run {run_id} is still {run.status}; cancel it first")
    store.delete_run(run_id)
    path = (run.config.get("data") or {}).get("path")
    if not path:
        return
    from core.data.roots import uploads_dir
    upload = Path(path)
    if uploads_dir() not in upload.parents:
        return  # the user's own folder: never ours to remove
    if any((other.config.get("data") or {}).get("path") == path for other in store.get_runs().values()):
        return
    from core.data.folder import remove_unpacked_copies_of
    remove_unpacked_copies_of(upload.resolve())
    upload.unlink(missing_ok=True)
    if upload.parent != uploads_dir():  # uploads/<hash>/<name>; older uploads lie directly in uploads/
        try:
            upload.parent.rmdir()
        except OSError:
            pass  # not empty: another file shares the folder


def has_checkpoint(run_id: str) -> bool:
    return (run_dir(run_id) / LAST).exists()
