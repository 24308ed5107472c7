"""A GPU out-of-memory raised inside a training step fails the run with a message that says what to lower (the
engine's _explain), not torch's allocator text; the GPU suite forces a real one (tests/cuda/test_oom_cuda.py)."""

import torch

from core import jobs
from core.jobs.runner import execute_run
from core.presets import preset
from core.store import RunStore
from core.tasks.classification import ClassificationTask

ALLOCATOR_TEXT = ("CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total capacity of 79.15 GiB of which "
                  "1.2 GiB is free.")


def test_a_gpu_out_of_memory_in_a_training_step_fails_the_run_with_the_friendly_message(lab_home, monkeypatch):
    real_step, calls = ClassificationTask.training_step, []

    def step(self, model, batch):
        calls.append(1)
        if len(calls) == 3:
            raise torch.OutOfMemoryError(ALLOCATOR_TEXT)
        return real_step(self, model, batch)

    monkeypatch.setattr(ClassificationTask, "training_step", step)
    config = preset("digits-cnn").replace(**{"optim.epochs": 1, "data.limit": 256, "device": "cpu"})
    run_id = jobs.create(config)
    assert execute_run(run_id, slot="cpu") == "failed"
    run = RunStore().get_run(run_id)
    batch = config.optim.batch_size
    assert run.error.startswith(f"the GPU ran out of memory with batch size {batch}; "
                                f"try optim.batch_size={batch // 2}, amp bf16 or a smaller image size"), run.error
    assert "CUDA out of memory" not in run.error and "Tried to allocate" not in run.error
    assert len(calls) == 3  # it stopped at the failing step
