"""What the CUDA suite (tests/cuda, pytest marker `cuda`) shares: the device it runs on, presets shrunk to a few
steps on the data in ../shared/data, and a trainer run for exactly that many steps.

The suite runs on a GPU (`python -m pytest -q -m cuda tests/cuda`) and is skipped where there is none. With
LAB_CUDA_SUITE_DEVICE=cpu it runs on the CPU instead (autocast and the GradScaler are then no-ops and torch.compile
is skipped): a smoke run that proves the suite's own code on a machine without a GPU."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from conftest import SHARED_DATA, train_in_process

SUITE_DEVICE_ENV = "LAB_CUDA_SUITE_DEVICE"
STEPS = 3  # optimiser steps per preset: enough for the scaler to update and the loss to be a real number

# One small preset per family is also trained under torch.compile: compiling every preset would take the suite far
# past its few minutes on a GPU, and the compiled paths differ by family (the training step), not by preset.
COMPILED = {"classification": "digits-cnn", "captioning": "scenes-captioning", "gan": "digits-dcgan",
            "autoencoder": "digits-vae", "language_model": "pydocs-char-gpt", "rl": "cartpole-actor-critic",
            "video": "moving-shapes-early-fusion", "seq2seq": "numbers-en-transformer",
            "text_classification": "docstrings-cnn", "distillation": "digits-distill"}

CIFAR_ZIP = SHARED_DATA / "cifar10-jpg-subset.zip"
MNIST_T10K = SHARED_DATA / "mnist-t10k"
SHAKESPEARE = SHARED_DATA / "tinyshakespeare.txt"


def suite_device():
    """The device the suite trains on: CUDA, or LAB_CUDA_SUITE_DEVICE (cpu) in the smoke mode."""
    import torch
    return torch.device(os.environ.get(SUITE_DEVICE_ENV) or "cuda")


def on_gpu() -> bool:
    return suite_device().type == "cuda"


def free_gpu() -> None:
    """Drop compiled graphs and cached blocks between tests, so one test's memory is not the next one's."""
    import gc

    import torch
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@pytest.fixture(scope="module")
def suite_home(tmp_path_factory):
    """One LAB_HOME for a whole test module (data caches and teacher runs are made once)."""
    import torch
    threads = torch.get_num_threads()
    if not on_gpu():
        torch.set_num_threads(min(threads, 2))  # the smoke mode's tiny steps gain nothing from more (conftest.py)
    with pytest.MonkeyPatch.context() as patch:
        home = tmp_path_factory.mktemp("cuda-suite") / "lab"
        patch.setenv("LAB_HOME", str(home))
        patch.setenv("LAB_HEARTBEAT_S", "0.2")
        yield home
    torch.set_num_threads(threads)
    free_gpu()


class StepLimit:
    """Stops the trainer after `steps` optimiser steps (through its stop event) and keeps every logged row."""

    def __init__(self, steps: int, stop_event: threading.Event):
        self.steps, self.stop_event = steps, stop_event
        self.rows: list[dict] = []

    def __getattr__(self, name):  # every other hook is a no-op
        if name.startswith("on_"):
            return lambda *args: None
        raise AttributeError(name)

    def on_train_log(self, trainer, metrics):
        self.rows.append(dict(metrics))

    def on_train_batch_end(self, trainer):
        if trainer.step >= self.steps:
            self.stop_event.set()


def train_steps(config, device, steps: int = STEPS):
    """(trainer, StepLimit) after exactly `steps` training steps of `config` on `device`, in this process."""
    from core.errors import Cancelled
    from core.jobs.assemble import assemble
    from core.tasks import validate

    config = validate(config)
    stop = threading.Event()
    limit = StepLimit(steps, stop)
    trainer = assemble(config, device=device, callbacks=[limit], stop_event=stop)
    try:
        trainer.fit()
    except Cancelled:
        pass
    return trainer, limit


_TEACHERS: dict[tuple, str] = {}


def teacher_run(data) -> str:
    """A finished classification run that a distillation student on `data` (its DataConfig) can learn from: the
    same images (a generated set's sample count included), trained once per LAB_HOME for one epoch on a few hundred
    of them, on the CPU (the teacher's quality does not matter here)."""
    from core.presets import preset
    from core.presets.distillation import TEACHER_PRESETS
    key = (os.environ["LAB_HOME"], data.name, data.num_samples)
    if key not in _TEACHERS:
        config = preset(TEACHER_PRESETS[data.name]).replace(
            **{"optim.epochs": 1, "data.limit": 256, "data.num_samples": data.num_samples, "device": "cpu",
               "log_every": 1})
        _TEACHERS[key] = train_in_process(config)
    return _TEACHERS[key]


def shrunk(name: str, device, **overrides):
    """Preset `name` for a few steps on `device`: logging every step, data that must be downloaded replaced by its
    copy in ../shared/data (or the test skipped when that is absent), a distillation run given a teacher."""
    from core.presets import preset
    config = preset(name)
    # eager and contiguous unless a test asks otherwise: the channels_last and torch.compile tests cover those
    # (a preset that compiles would make every variant pay for compilation)
    config = config.replace(**{"device": str(device), "log_every": 1, "channels_last": False, "compile": False,
                               **overrides})
    data = config.data
    if data.name == "mnist":
        _place_mnist()
        data.limit = 1024
    elif data.name == "cifar10":  # the same images as JPEG files, read by the folder data set
        data.name, data.path, data.image_size = "folder", str(_shared(CIFAR_ZIP)), 32
        data.limit = max(1024, (STEPS + 1) * config.optim.batch_size)  # all the steps in one epoch
    elif data.name == "folder" and not data.path:
        data.path, data.limit = str(_shared(CIFAR_ZIP)), 512
    elif data.name == "tinyshakespeare" and not data.path:
        data.path = str(_shared(SHAKESPEARE))
    if config.model.pretrained:
        from core.models.imagenet import pretrained_weights_problem
        if pretrained_weights_problem(config.model.name):
            # no ImageNet weights here and no network: the same architecture from random weights, all of it trained
            # (a frozen backbone needs weights worth keeping); what is checked is the device and the precision
            config.model.pretrained = config.model.freeze_backbone = False
    if config.task == "distillation" and not config.task_options.get("teacher"):
        config.task_options["teacher"] = teacher_run(data)
    return config


def _shared(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is not available (the suite reads downloaded data sets from ../shared/data)")
    return path


def _place_mnist() -> None:
    """MNIST offline: the shared t10k files serve as both splits (the loader reads the official file names)."""
    import shutil

    from core.data.torchvision_sets import mnist_raw_dir
    _shared(MNIST_T10K)
    raw = mnist_raw_dir("MNIST")
    raw.mkdir(parents=True, exist_ok=True)
    for kind in ("images-idx3", "labels-idx1"):
        source = MNIST_T10K / f"t10k-{kind}-ubyte.gz"
        for split in ("t10k", "train"):
            target = raw / f"{split}-{kind}-ubyte.gz"
            if not target.exists():
                shutil.copy(source, target)
