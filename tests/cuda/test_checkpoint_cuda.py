"""A run trained on the GPU checkpoints, is cancelled mid-epoch, resumes on the GPU from its checkpoint and ends
where an uninterrupted run ends; its checkpoint then loads on the CPU through the one loader
(core.tasks.checkpoints.load_run_model) and predicts what the GPU copy predicts."""

from __future__ import annotations

import os
import signal

import pytest

from conftest import train_in_process
from core.presets import preset
from suite import free_gpu, suite_device, suite_home  # noqa: F401

# suite_home: one LAB_HOME for the module (suite.py)
pytestmark = [pytest.mark.cuda, pytest.mark.usefixtures("suite_home")]

CANCEL_AT = 5  # a step inside the first epoch: the resume continues mid-epoch
EPOCHS, LIMIT = 2, 256  # digits-cnn at batch 32: 8 steps per epoch


def config_on(device):
    return preset("digits-cnn").replace(**{"optim.epochs": EPOCHS, "data.limit": LIMIT, "device": str(device),
                                           "amp": "bf16" if device.type == "cuda" else "off", "log_every": 1})


def weights(run_id: str, which: str = "last") -> dict:
    from core.engine.checkpoint import load_checkpoint
    from core.tasks.checkpoints import checkpoint_path
    return load_checkpoint(checkpoint_path(run_id, which), map_location="cpu")


def test_a_gpu_run_resumes_on_the_gpu_and_its_checkpoint_loads_on_the_cpu(monkeypatch):
    import torch

    from core import jobs
    from core.jobs.runner import execute_run
    from core.store import RunStore
    from core.tasks.checkpoints import clear_cache, load_run_model
    from core.tasks.classification import ClassificationTask

    device = suite_device()
    # the same kernels for the same shapes in every run (the engine lets cuDNN autotune and use TF32: switched off
    # here): the resumed run can then end exactly where the uninterrupted one does
    import core.engine.trainer
    monkeypatch.setattr(core.engine.trainer, "use_fast_kernels", lambda device: None)
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    reference = train_in_process(config_on(device))  # the same run, never interrupted

    real_step, calls = ClassificationTask.training_step, []

    def step(self, model, batch):
        calls.append(1)
        if len(calls) == CANCEL_AT:  # what Ctrl-C or `core cancel` does: the runner's handler sets its stop event
            os.kill(os.getpid(), signal.SIGINT)
        return real_step(self, model, batch)

    store = RunStore()
    run_id = jobs.create(config_on(device))
    with monkeypatch.context() as patch:
        patch.setattr(ClassificationTask, "training_step", step)
        assert execute_run(run_id) == "cancelled"
    saved = weights(run_id)
    assert saved["step"] == CANCEL_AT and saved["batch_in_epoch"] == CANCEL_AT and saved["epoch"] == 0
    if device.type == "cuda":
        assert "cuda" in store.get_run(run_id).device
        assert saved["scaler"] is not None

    assert jobs.resume(run_id, detach=False, progress=False) == "completed"
    run = store.get_run(run_id)
    assert run.device.startswith(device.type), run.device  # resumed on the same kind of device
    assert any(m.startswith(f"resumed from step {CANCEL_AT}") for m in store.events(run_id).message)
    resumed, uninterrupted = weights(run_id), weights(reference)
    assert resumed["step"] == uninterrupted["step"] == EPOCHS * 8
    for key, tensor in uninterrupted["model"].items():
        # exact on the CPU; on the GPU within what a different reduction order could make of a few steps
        tolerance = 0 if device.type == "cpu" else 1e-3
        torch.testing.assert_close(resumed["model"][key], tensor, atol=tolerance, rtol=0, msg=key)

    # the GPU checkpoint, loaded on the CPU and on the training device, predicts the same
    clear_cache()
    on_cpu = load_run_model(run_id, "last", device="cpu")
    on_device = load_run_model(run_id, "last", device=device)
    assert next(on_cpu.model.parameters()).device.type == "cpu"
    assert next(on_device.model.parameters()).device.type == device.type
    images = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 4 - 2  # (B, 1, 8, 8) normalised
    with torch.inference_mode():
        cpu_logits = on_cpu.model(images)
        device_logits = on_device.model(images.to(device)).cpu()
    torch.testing.assert_close(device_logits, cpu_logits, atol=1e-2, rtol=1e-2)  # TF32 convolutions on the GPU
    top2 = cpu_logits.topk(2, dim=1).values
    clear = (top2[:, 0] - top2[:, 1]) > 0.05  # rows whose winner is not a near tie
    assert torch.equal(device_logits.argmax(1)[clear], cpu_logits.argmax(1)[clear])
    clear_cache()
    free_gpu()
