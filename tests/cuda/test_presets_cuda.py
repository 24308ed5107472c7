"""Every preset trains a few steps on the GPU: under bf16 autocast, under fp16 with a GradScaler, and (the image
presets) with channels_last on and off; one preset per family also under torch.compile (suite.COMPILED)."""

from __future__ import annotations

import math

import pytest

from core.data import dataset_info
from core.presets import list_presets, preset
from suite import (COMPILED, STEPS, free_gpu, on_gpu, shrunk, suite_device, suite_home,  # noqa: F401
                   train_steps)

# suite_home: one LAB_HOME for the module (suite.py)
pytestmark = [pytest.mark.cuda, pytest.mark.usefixtures("suite_home")]

PRESETS = list_presets()  # plain data: no torch at collection
IMAGE_KINDS = ("images", "captions", "video")  # data kinds whose batches or models are images
IMAGE_PRESETS = [name for name in PRESETS if dataset_info(preset(name).data.name).kind in IMAGE_KINDS]


@pytest.fixture(autouse=True)
def _release_memory():
    yield
    free_gpu()


def check_trained(trainer, limit, device):
    import torch
    assert trainer.step == STEPS, f"trained {trainer.step} steps, not {STEPS}"
    losses = [row["train_loss"] for row in limit.rows]
    assert len(losses) == STEPS and all(math.isfinite(loss) for loss in losses), losses
    assert all(p.device.type == device.type for p in trainer.model.parameters())
    if device.type == "cuda":
        assert torch.cuda.max_memory_allocated(device) > 0


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_trains_under_bf16_autocast(name):
    import torch
    device = suite_device()
    trainer, limit = train_steps(shrunk(name, device, amp="bf16"), device)
    check_trained(trainer, limit, device)
    if device.type == "cuda":
        assert trainer.autocast().fast_dtype == torch.bfloat16
    assert not trainer.scaler.is_enabled()


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_trains_under_fp16_with_a_grad_scaler(name):
    device = suite_device()
    trainer, limit = train_steps(shrunk(name, device, amp="fp16"), device)
    check_trained(trainer, limit, device)
    assert trainer.scaler.is_enabled() == (device.type == "cuda")  # off on the CPU, where fp16 autocast is not used
    if trainer.scaler.is_enabled():
        scale = trainer.scaler.get_scale()
        assert math.isfinite(scale) and scale > 0


@pytest.mark.parametrize("name", IMAGE_PRESETS)
def test_every_image_preset_trains_with_channels_last(name):
    """channels_last on; the bf16 and fp16 tests above train with it off (suite.shrunk)."""
    import torch
    device = suite_device()
    trainer, limit = train_steps(shrunk(name, device, amp="bf16", channels_last=True), device)
    check_trained(trainer, limit, device)
    kernels = [p for p in trainer.model.parameters() if p.dim() == 4 and p.shape[2] * p.shape[3] > 1]
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in kernels)
    kernels_3d = [p for p in trainer.model.parameters() if p.dim() == 5 and p.shape[2] * p.shape[3] * p.shape[4] > 1]
    assert all(p.is_contiguous(memory_format=torch.channels_last_3d) for p in kernels_3d)  # video models


# compiled with channels_last where the family's inputs are images (both ways for image classification)
COMPILE_CASES = [(name, name in IMAGE_PRESETS) for name in COMPILED.values()] + [(COMPILED["classification"], False)]


@pytest.mark.parametrize("name,channels_last", COMPILE_CASES,
                         ids=[f"{name}-{'channels_last' if cl else 'contiguous'}" for name, cl in COMPILE_CASES])
def test_one_preset_per_family_trains_under_torch_compile(name, channels_last):
    if not on_gpu():
        pytest.skip("torch.compile is checked on the GPU only (on the CPU it needs a C++ compiler and minutes)")
    import torch
    device = suite_device()
    config = shrunk(name, device, amp="bf16", channels_last=channels_last, compile=True)
    try:
        trainer, limit = train_steps(config, device)
        check_trained(trainer, limit, device)
        assert trainer.eval_model is not trainer.model  # the compiled wrapper; its weights are the model's
    finally:
        torch._dynamo.reset()


def test_the_suite_covers_every_family():
    from core.tasks import list_tasks
    assert set(COMPILED) == set(list_tasks())
    assert all(preset(name).task == task for task, name in COMPILED.items())
