"""One run in several processes (torchrun, gloo on the CPU): it trains as one process would, rank 0 alone writes,
a cancel stops every rank at the same step and a resume finishes it; GPU slots are taken N at once, in order."""

import os
import subprocess
import sys
import threading
import time

import pytest

from core import jobs
from core.engine.checkpoint import LAST, load_checkpoint
from core.errors import ConfigError
from core.jobs.runner import execute_run
from core.jobs.slots import device_slot
from core.paths import run_dir
from core.presets import preset
from core.store import RunStore
from conftest import wait_for

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="torchrun with gloo, as CI runs it")


def digits(**changes):
    return preset("digits-mlp").replace(**{"optim.epochs": 2, "log_every": 4, "device": "cpu", **changes})


def test_two_processes_train_like_one_and_store_every_metric_once(lab_home):
    store = RunStore()
    one = jobs.create(digits())
    assert execute_run(one) == "completed"
    two = jobs.create(digits(devices=2))
    assert execute_run(two) == "completed"

    run = store.get_run(two)
    assert run.summary["world_size"] == 2 and store.get_run(one).summary["world_size"] == 1
    assert run.device == "2 × cpu processes (gloo)"
    alone, together = store.metrics(one), store.metrics(two)
    # rank 0 alone logs: one row per (step, key), exactly as many rows as the one-process run
    assert together.groupby(["step", "key"]).size().max() == 1
    assert len(together) == len(alone)
    # same global batch (64 = 2 x 32), same seed: the same first epoch up to the order of float sums
    for key in ("epoch_train_loss", "val_loss"):
        a = alone[alone.key == key].value.tolist()
        b = together[together.key == key].value.tolist()
        assert b == pytest.approx(a, rel=1e-4), key
    # the logged training figures are the global batch's, not rank 0's half: throughput counts both halves
    assert (together[together.key == "train_loss"].value.to_numpy() == pytest.approx(
        alone[alone.key == "train_loss"].value.to_numpy(), rel=1e-4))
    assert load_checkpoint(run_dir(two) / LAST)["epoch"] == 2  # rank 0 checkpointed, loadable as any run's


def test_cancel_stops_every_rank_and_resume_finishes_the_run(lab_home):
    store = RunStore()
    run_id = jobs.submit(preset("digits-cnn").replace(**{"optim.epochs": 30, "log_every": 5, "device": "cpu",
                                                         "devices": 2}))
    wait_for(lambda: (run_dir(run_id) / LAST).exists() and store.get_run(run_id).status == "running",
             timeout=120, what="a first checkpoint of the 2-process run")
    assert jobs.cancel(run_id, wait_s=60) == "cancelled"
    stopped_at = load_checkpoint(run_dir(run_id) / LAST)["step"]
    assert stopped_at > 0
    log = (run_dir(run_id) / "log.txt").read_text()
    assert "Traceback" not in log, log[-3000:]
    # a resume goes through torchrun again and continues from the checkpoint: no step twice
    assert jobs.resume(run_id, detach=False, progress=False) == "completed"
    run = store.get_run(run_id)
    assert run.summary["world_size"] == 2 and run.summary["epochs_done"] == 30
    steps = store.metrics(run_id, keys=["train_loss"]).step.tolist()
    assert steps == sorted(set(steps))
    assert any(m.startswith(f"resumed from step {stopped_at} ") for m in store.events(run_id).message)


@pytest.mark.parametrize("changes, says", [
    ({"devices": 2, "device": "cuda"}, "no usable CUDA GPU"),  # this machine has none
    ({"devices": 2, "device": "auto"}, "has no GPU; set device to cpu"),
    ({"devices": 3}, "must split evenly over 3 devices"),
])
def test_devices_this_machine_cannot_run_are_refused_before_anything_is_recorded(lab_home, changes, says):
    with pytest.raises(ConfigError, match=says):
        jobs.create(digits(**changes))
    assert RunStore().get_runs() == {}


def test_a_family_that_trains_on_one_device_refuses_several(lab_home):
    config = preset(next(p for p in __import__("core.presets", fromlist=["x"]).list_presets("language_model")))
    with pytest.raises(ConfigError, match="trains on one device"):
        jobs.create(config.replace(devices=2, device="cpu"))


def test_a_run_needing_two_gpus_takes_both_at_once_and_the_line_stays_first_come_first_served(lab_home):
    gpus = "cuda0,cuda1,cuda2"
    order: list[str] = []
    with device_slot(gpus) as first:  # one GPU busy: two are free
        assert first == ["cuda0"]

        def wait(name, count):
            with device_slot(gpus, count=count, poll_s=0.05) as held:
                order.append(f"{name}:{','.join(held)}")
                time.sleep(0.3)

        big = threading.Thread(target=wait, args=("big", 3))
        big.start()
        time.sleep(0.3)
        small = threading.Thread(target=wait, args=("small", 1))  # a GPU is free, but the 3-GPU run came first
        small.start()
        time.sleep(0.5)
        assert order == []
    big.join(10)
    small.join(10)
    assert order == ["big:cuda0,cuda1,cuda2", "small:cuda0"]


def test_a_worker_sees_only_the_gpus_it_holds():
    code = ("import os; from core.jobs.runner import claim_gpus; "
            "print(claim_gpus(['cuda1', 'cuda3']), os.environ['CUDA_VISIBLE_DEVICES'])")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "4,5,6,7"}  # the server itself was given four GPUs
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["[0,", "1]", "5,7"]


def test_a_model_that_freezes_a_parameter_mid_run_trains_on_two_processes(lab_home):
    """The speedrun network stops training its whitening bias after epoch 3: DDP must not wait for its gradient."""
    from core.models.speedrun import WHITEN_BIAS_EPOCHS
    config = preset("cifar10-speedrun").replace(**{
        "data.name": "shapes", "data.num_samples": 256, "data.image_size": 16, "data.augment_crop": False,
        "optim.batch_size": 32, "optim.epochs": WHITEN_BIAS_EPOCHS + 1, "device": "cpu", "devices": 2, "log_every": 2})
    run_id = jobs.create(config)
    assert execute_run(run_id) == "completed", RunStore().get_run(run_id).error
    assert RunStore().get_run(run_id).summary["epochs_done"] == WHITEN_BIAS_EPOCHS + 1
