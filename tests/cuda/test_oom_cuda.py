"""A real CUDA out-of-memory fails the run with the engine's friendly message (core.engine.trainer._explain): once
from an allocation no GPU can hold, made inside a training step of a run the runner executes, once from a real
forward pass over a batch that does not fit under a lowered memory cap."""

from __future__ import annotations

import pytest

from core.presets import preset
from suite import free_gpu, on_gpu, shrunk, suite_device, suite_home  # noqa: F401

# suite_home: one LAB_HOME for the module (suite.py)
pytestmark = [pytest.mark.cuda, pytest.mark.usefixtures("suite_home")]

HUGE_BYTES = 1 << 50  # a pebibyte: more than any GPU (or computer) has


def test_a_cuda_out_of_memory_in_a_training_step_fails_the_run_with_the_friendly_message(monkeypatch):
    import torch

    from core import jobs
    from core.jobs.runner import execute_run
    from core.store import RunStore
    from core.tasks.classification import ClassificationTask

    device = suite_device()
    real_step, calls = ClassificationTask.training_step, []

    def step(self, model, batch):
        calls.append(1)
        if len(calls) == 3:  # a real allocation on the run's device, which its allocator refuses
            torch.empty(HUGE_BYTES, dtype=torch.uint8, device=batch[0].device)
        return real_step(self, model, batch)

    monkeypatch.setattr(ClassificationTask, "training_step", step)
    config = preset("digits-cnn").replace(**{"optim.epochs": 1, "data.limit": 256, "device": str(device)})
    run_id = jobs.create(config)
    try:
        assert execute_run(run_id) == "failed"
    finally:
        free_gpu()
    error = RunStore().get_run(run_id).error
    batch = config.optim.batch_size
    if device.type == "cuda":
        assert error.startswith(f"the GPU ran out of memory with batch size {batch}; "
                                f"try optim.batch_size={batch // 2}, amp bf16 or a smaller image size"), error
    else:  # the smoke mode: the CPU allocator's refusal, told the same way
        assert error.startswith(f"the computer ran out of memory (RAM) with batch size {batch}"), error
    assert "Tried to allocate" not in error and "DefaultCPUAllocator" not in error
    assert RunStore().get_run(run_id).status == "failed"


def test_a_batch_too_big_for_the_gpu_fails_with_the_friendly_message():
    """The memory cap is lowered after the data is on the GPU, so the first forward pass is what runs out."""
    if not on_gpu():
        pytest.skip("a memory cap for the allocator exists on CUDA only")
    import torch

    from core.errors import TrainingError
    from core.jobs.assemble import assemble
    from core.tasks import validate

    device = suite_device()
    config = validate(shrunk("cifar10-resnet18", device, **{"optim.batch_size": 1024, "amp": "off"}))
    config.data.limit = 1024
    trainer = assemble(config, device=device)
    free_gpu()
    total = torch.cuda.get_device_properties(device).total_memory
    in_use = torch.cuda.memory_allocated(device)
    # what is already allocated (weights, data) plus 256 MiB: far below a ResNet-18's activations for 1,024 images
    torch.cuda.set_per_process_memory_fraction(min(1.0, (in_use + (256 << 20)) / total), device)
    try:
        with pytest.raises(TrainingError, match=r"^the GPU ran out of memory with batch size 1024; "
                                                r"try optim.batch_size=512, amp bf16 or a smaller image size"):
            trainer.fit()
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, device)
        del trainer
        free_gpu()
