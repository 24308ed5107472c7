"""Jobs run in real detached worker processes: submit, queue, cancel, SIGKILL, resume."""

import os
import signal
import time

import pytest

from core import jobs
from core.jobs.runner import resumed_at
from core.presets import preset
from core.engine.checkpoint import LAST, load_checkpoint
from core.paths import run_dir
from core.store import RunStore
from conftest import wait_for


def slow_config(epochs=40):
    # about 0.1-0.2 s per epoch on a CPU: long enough to act on it mid-run
    return preset("digits-cnn").replace(**{"optim.epochs": epochs, "log_every": 5, "name": "slow"})




def status(run_id):
    return RunStore().get_run(run_id).status


def test_submitted_run_completes_in_a_worker_and_records_everything(lab_home):
    run_id = jobs.submit(preset("digits-mlp").replace(**{"optim.epochs": 3}))
    wait_for(lambda: status(run_id) == "completed", what="completion")
    store = RunStore()
    run = store.get_run(run_id)
    assert run.summary["epochs_done"] == 3 and run.summary["best_val_acc"] > 0.8
    assert run.device.startswith("cpu") and run.versions["torch"]
    metrics = store.metrics(run_id)
    assert {"train_loss", "train_acc", "lr", "samples_per_s", "val_loss", "val_acc", "val_top5"} <= set(metrics.key)
    assert (run_dir(run_id) / "best.pt").exists() and (run_dir(run_id) / LAST).exists()
    assert "finished: completed" in (run_dir(run_id) / "log.txt").read_text()


def test_second_job_waits_for_the_cpu_slot_and_cancelling_it_while_queued_never_runs_it(lab_home):
    first = jobs.submit(slow_config())
    wait_for(lambda: status(first) == "running", what="first run to start")
    second = jobs.submit(slow_config())
    time.sleep(2.0)
    assert status(second) == "queued"
    assert jobs.cancel(second, wait_s=20) == "cancelled"
    assert RunStore().metrics(second).empty
    assert jobs.cancel(first, wait_s=30) == "cancelled"


def test_cancel_saves_a_checkpoint_and_resume_finishes_with_no_step_repeated(lab_home):
    run_id = jobs.submit(slow_config(epochs=12))
    wait_for(lambda: RunStore().last_metrics(run_id).get("train_loss") is not None, what="first metrics")
    assert jobs.cancel(run_id, wait_s=30) == "cancelled"
    assert load_checkpoint(run_dir(run_id) / LAST)["step"] > 0
    stopped_at = load_checkpoint(run_dir(run_id) / LAST)["step"]
    assert resumed_at(RunStore(), run_id) is None
    before = time.time()
    assert jobs.resume(run_id, detach=False, progress=False) == "completed"
    assert f"resumed from step {stopped_at} " in " ".join(RunStore().events(run_id).message)
    assert before <= resumed_at(RunStore(), run_id) <= time.time()  # the live view paces its ETA from here
    frame = RunStore().metrics(run_id, keys=["train_loss"])
    steps = frame.step.tolist()
    assert steps == sorted(set(steps))
    assert RunStore().get_run(run_id).summary["steps"] == 12 * RunStore().get_run(run_id).summary["steps_per_epoch"]


def test_sigkilled_worker_is_marked_interrupted_and_resume_completes_it(lab_home):
    store = RunStore()
    run_id = jobs.submit(slow_config(epochs=30))
    wait_for(lambda: (run_dir(run_id) / LAST).exists() and status(run_id) == "running", what="a first checkpoint")
    time.sleep(0.3)  # somewhere inside a later epoch
    os.kill(store.get_run(run_id).pid, signal.SIGKILL)
    wait_for(lambda: status(run_id) == "interrupted", timeout=30, what="the run to be marked interrupted")

    rows_before = len(store.metrics(run_id))
    assert rows_before > 0  # the store is intact and readable
    checkpoint = load_checkpoint(run_dir(run_id) / LAST)
    assert checkpoint["batch_in_epoch"] == 0 and checkpoint["epoch"] >= 1
    kept = store.metrics(run_id, keys=["train_loss"])
    kept = kept[kept.step <= checkpoint["step"]][["step", "value"]].reset_index(drop=True)

    with pytest.raises(Exception, match="only queued or running runs can be cancelled"):
        jobs.cancel(run_id)
    assert jobs.resume(run_id, detach=False, progress=False) == "completed"
    run = store.get_run(run_id)
    frame = store.metrics(run_id, keys=["train_loss"])
    steps = frame.step.tolist()
    assert steps == sorted(set(steps)), "resume repeated or reordered steps"
    assert steps[-1] == 30 * run.summary["steps_per_epoch"]
    epochs = store.metrics(run_id, keys=["val_acc"]).epoch.tolist()
    assert epochs == list(range(1, 31))
    # it really continued: history up to the checkpoint is untouched, and the log says where it resumed
    after = frame[frame.step <= checkpoint["step"]][["step", "value"]].reset_index(drop=True)
    assert after.equals(kept)
    assert f"resumed from step {checkpoint['step']} " in " ".join(store.events(run_id).message)


def test_completed_runs_cannot_be_resumed_and_unknown_ids_are_reported(lab_home):
    from core.errors import LabError, RunNotFound
    with pytest.raises(RunNotFound):
        jobs.resume("no-such-run-id")
    with pytest.raises(RunNotFound):
        jobs.cancel("../../etc")
    run_id = jobs.create(preset("digits-mlp"))
    RunStore().finish(run_id, "completed")
    with pytest.raises(LabError, match="only interrupted or cancelled runs can be resumed"):
        jobs.resume(run_id)
