"""A run that cannot fit in memory is refused before launch; one that still runs out of RAM fails with a
message like CUDA's, not the allocator's traceback.

Reproduces: `--image-size 1024 --batch-size 65536` passed validation and ended in a raw allocator error."""

import subprocess
import sys
from pathlib import Path

import pytest

from core import jobs
from core.errors import ConfigError
from core.jobs.runner import execute_run
from core.presets import preset
from core.store import RunStore
from core.tasks.classification import ClassificationTask
from core.tasks.memory import estimate_memory

ROOT = Path(__file__).resolve().parents[2]


def test_the_cli_refuses_a_run_far_beyond_the_machines_memory_and_records_nothing(lab_home):
    done = subprocess.run([sys.executable, "-m", "core", "train", "--preset", "digits-cnn", "--image-size", "1024",
                           "--batch-size", "65536"], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    line = done.stderr.strip()
    assert line.startswith("error: this run needs about") and "free on the computer (RAM)" in line, line
    assert "lower optim.batch_size" in line
    assert RunStore().count_runs() == 0


def test_the_estimate_grows_with_batch_and_image_size_and_a_small_run_fits(lab_home):
    small = estimate_memory(preset("digits-cnn"))
    bigger_batch = estimate_memory(preset("digits-cnn").replace(**{"optim.batch_size": 4 * preset("digits-cnn").optim.batch_size}))
    assert small.available_bytes > 0 and not small.too_big and not small.tight
    assert bigger_batch.activation_bytes == pytest.approx(4 * small.activation_bytes, rel=0.01)
    assert bigger_batch.weights_bytes == small.weights_bytes
    # a resnet keeps far more activations per image than the small CNN on the same images
    resnet = estimate_memory(preset("cifar10-resnet18"))
    cnn = estimate_memory(preset("cifar10-cnn").replace(**{"optim.batch_size": preset("cifar10-resnet18").optim.batch_size}))
    assert resnet.activation_bytes > 5 * cnn.activation_bytes
    with pytest.raises(ConfigError, match="data.image_size"):
        jobs.create(preset("digits-cnn").replace(**{"data.image_size": 1024, "optim.batch_size": 65536}))


def test_a_cpu_out_of_memory_during_training_fails_the_run_with_a_friendly_message(lab_home, monkeypatch):
    real_step, calls = ClassificationTask.training_step, []

    def step(self, model, batch):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:121] data. DefaultCPUAllocator: can't allocate "
                               "memory: you tried to allocate 824633720832 bytes. Error code 12")
        return real_step(self, model, batch)

    monkeypatch.setattr(ClassificationTask, "training_step", step)
    run_id = jobs.create(preset("digits-cnn").replace(**{"optim.epochs": 1}))
    assert execute_run(run_id, slot="cpu") == "failed"
    error = RunStore().get_run(run_id).error
    batch = preset("digits-cnn").optim.batch_size
    assert error.startswith(f"the computer ran out of memory (RAM) with batch size {batch}")
    assert f"optim.batch_size={batch // 2}" in error and "DefaultCPUAllocator" not in error


def test_the_cli_prints_the_estimate_a_run_was_checked_against(lab_home):
    done = subprocess.run([sys.executable, "-m", "core", "train", "--preset", "digits-mlp", "--epochs", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    memory = [line for line in done.stdout.splitlines() if line.startswith("memory: about")]
    assert len(memory) == 1 and "free on the computer (RAM)" in memory[0]
