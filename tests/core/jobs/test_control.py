"""Live control of a running job: a real worker process applies more epochs, a new learning rate and
"stop after this epoch" between steps, records each in the run's config history, and a resume honours them."""

import math
import os
import signal
import subprocess
import sys

import pytest

from core import jobs
from core.errors import ConfigError, LabError
from core.jobs import control
from core.jobs.assemble import assemble
from core.paths import run_dir
from core.presets import preset
from core.engine.checkpoint import LAST
from core.store import RunStore
from conftest import wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))




def steady_config(epochs=200):
    # a constant schedule, so the learning rate logged after a change must equal the new rate exactly
    return preset("digits-cnn").replace(**{"optim.epochs": epochs, "optim.schedule": "constant", "log_every": 5,
                                           "name": "steered"})


def lr_rows(run_id):
    return RunStore().metrics(run_id, keys=["lr"])


def test_a_running_worker_takes_new_epochs_lr_and_a_stop_and_keeps_their_history(lab_home):
    run_id = jobs.submit(steady_config())
    store = RunStore()
    wait_for(lambda: len(lr_rows(run_id)) >= 3, what="the first logged steps")
    ids = control.request(run_id, epochs=250, lr=1e-4)
    applied = control.wait_applied(run_id, ids, timeout_s=20)
    assert [c.kind for c in applied] == ["epochs", "lr"] and all(c.applied for c in applied)
    epochs_change, lr_change = applied
    assert (epochs_change.old_value, epochs_change.value) == (200, 250)
    assert (lr_change.old_value, lr_change.value) == (2e-3, 1e-4)
    config = store.get_run(run_id).config
    assert config["optim"]["epochs"] == 250 and config["optim"]["lr"] == 1e-4  # what a resume will read

    wait_for(lambda: (lr_rows(run_id).step > lr_change.step + 10).any(), what="steps after the change")
    rows = lr_rows(run_id)
    # the rate logged at a step is the one that step used: the change lands at the next step
    assert set(rows[rows.step <= lr_change.step].value.round(12)) == {2e-3}
    assert set(rows[rows.step > lr_change.step + 1].value.round(12)) == {1e-4}

    [stop] = control.wait_applied(run_id, control.request(run_id, stop_after_epoch=True), timeout_s=20)
    assert stop.applied and stop.value == math.floor(stop.epoch) + 1  # the epoch under way when it landed
    wait_for(lambda: store.get_run(run_id).status == "completed", what="the run to stop after its epoch")
    run = store.get_run(run_id)
    assert run.summary["epochs_done"] == stop.value < 250
    assert "stopped after epoch" in run.summary["stop_reason"]
    messages = " | ".join(store.events(run_id).message)
    assert "epochs 200 → 250" in messages and "learning rate 0.002 → 0.0001" in messages
    assert [c.kind for c in store.controls(run_id)] == ["epochs", "lr", "stop_after_epoch"]


def test_bad_requests_change_nothing_and_say_what_to_do(lab_home):
    run_id = jobs.create(steady_config(epochs=5))  # queued, no worker: requests wait for one
    with pytest.raises(ConfigError, match="optim.lr"):
        control.request(run_id, lr=50.0)
    with pytest.raises(ConfigError, match="optim.epochs"):
        control.request(run_id, epochs=10**6)
    with pytest.raises(ConfigError, match="nothing to change"):
        control.request(run_id)
    with pytest.raises(ConfigError, match="nothing to change"):
        control.request(run_id, epochs=5, lr=2e-3)  # the run's own values: a form sending both fields unchanged
    assert [c.kind for c in RunStore().controls(run_id)] == []
    control.request(run_id, epochs=5, lr=1e-3)  # only the rate differs: only the rate is sent
    assert [c.kind for c in RunStore().controls(run_id)] == ["lr"]
    RunStore().close_pending_controls(run_id)
    RunStore().finish(run_id, "completed")
    with pytest.raises(LabError, match="only a queued or running run can be changed"):
        control.request(run_id, epochs=8)


def test_requests_made_while_queued_apply_when_the_run_starts(lab_home):
    from core.jobs.runner import execute_run
    run_id = jobs.create(steady_config(epochs=2))
    control.request(run_id, epochs=3, lr=5e-4)
    assert execute_run(run_id, slot="cpu") == "completed"
    run = RunStore().get_run(run_id)
    assert run.summary["epochs_done"] == 3
    assert set(lr_rows(run_id).value.round(12)) == {5e-4}
    assert all(c.applied and c.step == 0 for c in RunStore().controls(run_id))


def test_a_checkpoint_from_before_a_change_resumes_with_the_changed_rate_and_length(lab_home):
    """The change landed after the last checkpoint, then the worker died: the stored config wins."""
    before = steady_config(epochs=1)
    trainer = assemble(before)
    trainer.fit()
    payload = trainer.state_dict()
    after = before.replace(**{"optim.lr": 4e-4, "optim.epochs": 2})
    resumed = assemble(after)
    resumed.load_state_dict(payload)
    assert resumed.scheduler.base_lrs == pytest.approx([4e-4] * len(resumed.scheduler.base_lrs))
    assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(4e-4)
    summary = resumed.fit()
    assert summary["epochs_done"] == 2 and resumed.lr == pytest.approx(4e-4)


def test_a_stop_accepted_before_a_kill_still_holds_after_resume(lab_home):
    run_id = jobs.submit(steady_config())
    store = RunStore()
    wait_for(lambda: (run_dir(run_id) / LAST).exists() and len(lr_rows(run_id)) >= 3, what="a first checkpoint")
    [stop] = control.wait_applied(run_id, control.request(run_id, stop_after_epoch=True, epochs=240), timeout_s=20)[1:]
    os.kill(store.get_run(run_id).pid, signal.SIGKILL)
    wait_for(lambda: store.get_run(run_id).status in ("interrupted", "completed"), timeout=30, what="the kill")
    if store.get_run(run_id).status == "completed":
        pytest.skip("the run reached its stop before the kill landed")
    assert jobs.resume(run_id, detach=False, progress=False) == "completed"
    run = store.get_run(run_id)
    assert run.summary["epochs_done"] == stop.value and run.config["optim"]["epochs"] == 240


def test_cli_control_reports_where_each_change_landed(lab_home):
    run_id = jobs.submit(steady_config())
    wait_for(lambda: len(lr_rows(run_id)) >= 3, what="the first logged steps")
    done = subprocess.run([sys.executable, "-m", "core", "control", run_id, "--lr", "3e-4", "--stop-after-epoch"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"run {run_id}: learning rate 0.002 → 0.0003 at step" in done.stdout
    assert "stop after epoch" in done.stdout
    wait_for(lambda: RunStore().get_run(run_id).status == "completed", what="the stop")
    again = subprocess.run([sys.executable, "-m", "core", "control", run_id, "--epochs", "9"],
                           capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert again.returncode == 2 and "only a queued or running run can be changed" in again.stderr


class StubTrainer:
    """Just what LiveControl reads and sets, at the end of an epoch (epoch counted, no batch of the next yet)."""

    def __init__(self, epoch, epochs):
        from core.presets import preset
        self.config = preset("digits-mlp").replace(**{"optim.epochs": epochs})
        self.epoch, self.batch_in_epoch, self.steps_per_epoch, self.step = epoch, 0, 10, epoch * 10
        self.should_stop, self.stop_reason = False, ""

    def set_epochs(self, epochs):
        self.config.optim.epochs = epochs


def test_a_request_made_during_an_epochs_validation_means_that_epoch(lab_home):
    from core.engine.control import LiveControl
    run_id = jobs.create(steady_config(epochs=10))
    store = RunStore()
    store.request_control(run_id, "stop_after_epoch")
    trainer = StubTrainer(epoch=3, epochs=10)  # epoch 3 has just ended
    LiveControl(store, run_id).on_epoch_end(trainer, {})
    assert trainer.should_stop and "after epoch 3" in trainer.stop_reason
    store.request_control(run_id, "epochs", 3)
    trainer = StubTrainer(epoch=3, epochs=10)
    LiveControl(store, run_id).on_epoch_end(trainer, {})
    [change] = [c for c in store.controls(run_id) if c.kind == "epochs"]
    assert trainer.config.optim.epochs == 3 and not change.note  # not raised to 4


def test_more_epochs_after_a_stop_withdraw_the_stop(lab_home):
    from core.engine.control import LiveControl
    run_id = jobs.create(steady_config(epochs=10))
    store = RunStore()
    live = LiveControl(store, run_id)
    trainer = StubTrainer(epoch=2, epochs=10)
    trainer.batch_in_epoch = 4  # mid-epoch 3
    store.request_control(run_id, "stop_after_epoch")
    live.apply_pending(trainer)
    store.request_control(run_id, "epochs", 12)
    live.apply_pending(trainer)
    trainer.epoch, trainer.batch_in_epoch = 3, 0
    live.on_epoch_end(trainer, {})
    assert not trainer.should_stop and trainer.config.optim.epochs == 12
    assert "withdrawn" in store.controls(run_id)[-1].note


def test_requests_left_when_a_run_ends_stay_unapplied_after_a_resume(lab_home):
    run_id = jobs.create(steady_config(epochs=10))
    store = RunStore()
    store.request_control(run_id, "lr", 1e-4)
    store.finish(run_id, "cancelled")
    assert store.pending_controls(run_id) == []
    [closed] = store.controls(run_id)
    assert not closed.applied and "ended first" in control.describe(closed, run_active=True)
