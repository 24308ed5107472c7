"""The CIFAR-10 speedrun's parts (core/models/speedrun.py, core/tasks/classification/speedrun.py, the norm-layer
learning rate and the triangle schedule of core/engine/optim.py), each against what it must compute."""

from __future__ import annotations

import math

import pytest
import torch

from core.config import RunConfig
from core.engine.optim import build_optimizer, lr_factor
from core.models.speedrun import PATCH, WHITEN_BIAS_EPOCHS, SpeedrunNet
from core.tasks.classification.speedrun import LOOKAHEAD_DECAY, LOOKAHEAD_EVERY, Lookahead, tta_logits


def _correlated_images(n=200, size=16, seed=0):
    """Smooth colour images: neighbouring pixels and channels strongly correlated, as in photos."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, 1, size // 4, size // 4, generator=g)
    smooth = torch.nn.functional.interpolate(base, size=size, mode="bilinear", align_corners=False)
    return torch.cat([smooth, 0.8 * smooth, -0.5 * smooth], 1) + 0.1 * torch.randn(n, 3, size, size, generator=g)


def test_the_whitening_layer_decorrelates_the_training_patches():
    images = _correlated_images()
    model = SpeedrunNet(num_classes=10, in_channels=3)
    model.fit_to_data(images)
    dims = 3 * PATCH * PATCH
    with torch.no_grad():
        out = torch.nn.functional.conv2d(images, model.whiten.weight)  # (N, 2D, H-1, W-1), no bias
    first = out[:, :dims].permute(0, 2, 3, 1).reshape(-1, dims)  # the + half: one filter per eigenvector
    covariance = first.T @ first / len(first)
    # each direction comes out with variance λ / (λ + eps): 1 where the data varies, less in near-null ones
    eigenvalues = torch.linalg.eigvalsh((lambda p: p.T @ p / len(p))(
        images.unfold(2, PATCH, 1).unfold(3, PATCH, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, dims))).flip(0)
    expected = eigenvalues / (eigenvalues + 5e-4)
    assert torch.allclose(covariance.diagonal(), expected, atol=2e-3)
    off_diagonal = covariance - torch.diag(covariance.diagonal())
    assert off_diagonal.abs().max() < 2e-3  # decorrelated
    assert torch.equal(out[:, dims:], -out[:, :dims])  # both signs, so GELU loses nothing


def test_only_shifts_and_convolutions_train_and_the_whitening_bias_stops_after_its_epochs():
    model = SpeedrunNet(num_classes=10, in_channels=3)
    assert not model.whiten.weight.requires_grad
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(not m.weight.requires_grad and m.bias.requires_grad for m in norms)
    model.set_epoch(WHITEN_BIAS_EPOCHS - 1)
    assert model.whiten.bias.requires_grad
    model.set_epoch(WHITEN_BIAS_EPOCHS)
    assert not model.whiten.bias.requires_grad
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_norm_layers_get_the_scaled_rate_and_the_same_absolute_decay():
    model = SpeedrunNet(num_classes=10, in_channels=3)
    optim = RunConfig().optim
    optim.optimizer, optim.lr, optim.weight_decay, optim.norm_lr_scale = "sgd", 1.5, 1e-3, 64.0
    groups = build_optimizer(model, optim).param_groups
    norm_params = {id(m.bias) for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)}
    assert {id(p) for p in groups[-1]["params"]} == norm_params
    assert groups[-1]["lr"] == pytest.approx(96.0) and groups[0]["lr"] == 1.5
    assert groups[-1]["lr"] * groups[-1]["weight_decay"] == pytest.approx(groups[0]["lr"] * groups[0]["weight_decay"])
    # every trainable parameter in exactly one group
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert sorted(id(p) for g in groups for p in g["params"]) == sorted(id(p) for p in trainable)
    optim.norm_lr_scale = 1.0  # the default: the two groups checkpoints have always held
    assert len(build_optimizer(model, optim).param_groups) == 2


def test_the_triangle_schedule_rises_from_a_fifth_to_its_peak_then_falls_to_seven_hundredths():
    optim = RunConfig().optim
    optim.schedule, optim.epochs = "triangle", 10
    factors = [lr_factor(step, optim, 100) for step in range(1000)]
    assert factors[0] == pytest.approx(0.2)
    assert max(factors) == pytest.approx(1.0) and factors.index(max(factors)) == 230
    assert factors[-1] > 0.07 and lr_factor(1000, optim, 100) == pytest.approx(0.07)  # 0.07 once all steps are done
    assert all(a < b for a, b in zip(factors[:230], factors[1:231]))
    assert all(a > b for a, b in zip(factors[230:], factors[231:]))


class _FakeTrainer:
    def __init__(self, model, steps_per_epoch, epochs):
        self.model, self.steps_per_epoch, self.step = model, steps_per_epoch, 0
        self.config = RunConfig()
        self.config.optim.epochs = epochs


def test_lookahead_pulls_the_weights_towards_the_slow_ones_and_ends_on_them():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    trainer = _FakeTrainer(model, steps_per_epoch=10, epochs=2)  # 20 steps
    lookahead = Lookahead()
    lookahead.on_fit_start(trainer)
    slow = model.weight.detach().clone()
    for step in range(1, 21):
        with torch.no_grad():
            model.weight.add_(1.0)  # a "training step"
        fast = model.weight.detach().clone()
        trainer.step = step
        lookahead.on_train_batch_end(trainer)
        if step % LOOKAHEAD_EVERY == 0:
            slow = slow + (1 - LOOKAHEAD_DECAY * (step / 20) ** 3) * (fast - slow)
            assert torch.allclose(model.weight, slow, atol=1e-6)  # restarted from the slow weights
        elif step == 19:
            assert torch.equal(model.weight, fast)  # between updates the fast weights are left alone
        if step == 20:
            assert torch.allclose(model.weight, slow, atol=1e-6)  # the end: the slow weights
    assert torch.allclose(model.weight, lookahead.ema["weight"])


def test_test_time_augmentation_averages_the_mirrored_and_shifted_views():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(5))
    x = torch.randn(2, 3, 8, 8)
    model(x)
    mirror = 0.5 * (model(x) + model(x.flip(-1)))
    assert torch.allclose(tta_logits(model, x, "flip"), mirror, atol=1e-6)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")
    views = [padded[..., :8, :8], padded[..., 2:, 2:]]
    shifted = sum(0.5 * (model(v) + model(v.flip(-1))) for v in views) / 2
    assert torch.allclose(tta_logits(model, x, "flip_translate"), 0.5 * mirror + 0.5 * shifted, atol=1e-6)


def test_the_speedrun_preset_learns_and_reports_its_augmented_accuracy(lab_home):
    """The preset's own recipe (whitening fitted to the data, lookahead, label smoothing, triangle schedule,
    norm-layer rate) on small generated images, on the CPU: it learns far above chance in a few epochs."""
    from conftest import train_in_process

    from core.presets import preset
    from core.store import RunStore
    from core.tasks import validate
    config = validate(preset("cifar10-speedrun").replace(**{
        "data.name": "shapes", "data.num_samples": 1200, "data.image_size": 16, "data.augment_crop": False,
        "optim.batch_size": 64, "optim.epochs": 4, "device": "cpu", "log_every": 5}))
    run_id = train_in_process(config)
    run = RunStore().get_run(run_id)
    last = run.summary["last"]
    assert 0.0 <= last["val_tta_acc"] <= 1.0
    from core.data import dataset_info
    chance = 1.0 / len(dataset_info("shapes").classes)
    assert run.summary["best_val_acc"] > 2 * chance, run.summary  # well above chance
    assert math.isfinite(last["val_loss"])
    from core.tasks.checkpoints import load_run_model
    model = load_run_model(run_id, "last").model
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(torch.equal(m.weight, torch.ones_like(m.weight)) for m in norms)  # scales never trained
    assert any(m.bias.abs().max() > 0 for m in norms)  # shifts did
    half = model.whiten.weight.shape[0] // 2
    assert torch.equal(model.whiten.weight[:half], -model.whiten.weight[half:])  # the fitted filters, untouched
    assert model.whiten.weight.abs().max() > 1.0  # and fitted: 1/sqrt(eigenvalue) of normalised patches
