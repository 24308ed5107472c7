"""Explaining a video model (core.tasks.video.explain): the share of attribution per frame shows which moments a
model can use at all, whatever its weights: the single-frame baseline only its middle frame, late fusion only its
first and last, slow fusion all of them; integrated gradients add up to the change in the class score."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from core.errors import InputError
from core.models import build
from core.tasks.video.explain import explain_window

T, S, CLASSES = 8, 16, 4


def run_of(model_name: str):
    torch.manual_seed(0)
    model = build(model_name, num_classes=CLASSES, in_channels=3, frames=T, image_size=S).eval()
    metadata = {"classes": [f"c{i}" for i in range(CLASSES)],
                "preprocessing": {"frames": T, "image_size": S, "mean": [0.5] * 3, "std": [0.25] * 3}}
    return SimpleNamespace(task="video", run_id="test", metadata=metadata, model=model)


def window(seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (T, 3, S, S), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


@pytest.mark.parametrize("model_name, frames_used", [("single_frame", {T // 2}), ("late_fusion", {0, T - 1})])
def test_frame_shares_fall_only_on_the_frames_a_model_reads(model_name, frames_used):
    explained = explain_window(run_of(model_name), window(), "saliency")
    assert explained.maps.shape == (T, S, S) and 0 <= explained.maps.min() and explained.maps.max() == 1.0
    assert explained.frame_share.sum() == pytest.approx(1.0)
    used = {int(i) for i in np.flatnonzero(explained.frame_share > 0)}
    assert used == frames_used


def test_slow_fusion_looks_at_every_frame_and_no_parameter_gradient_is_written():
    run = run_of("slow_fusion")
    explained = explain_window(run, window(), "saliency")
    assert (explained.frame_share > 0).all()
    assert all(p.grad is None for p in run.model.parameters())


def test_integrated_gradients_add_up_to_the_change_in_the_class_score():
    from captum.attr import IntegratedGradients
    run = run_of("early_fusion")
    x = (window(1)[None].float() / 255 - 0.5) / 0.25  # (1, T, 3, S, S) as explain_window normalises it
    explained = explain_window(run, window(1), "ig")
    target = explained.class_index
    attributions, delta = IntegratedGradients(run.model).attribute(
        x, baselines=torch.zeros_like(x), target=target, n_steps=64, return_convergence_delta=True)
    with torch.no_grad():
        change = run.model(x)[0, target] - run.model(torch.zeros_like(x))[0, target]
    assert float(attributions.sum()) == pytest.approx(float(change), abs=max(1e-3, 2 * abs(float(delta))))
    with torch.no_grad():
        assert target == int(run.model(x).argmax())


def test_bad_requests_say_what_to_do():
    run = run_of("single_frame")
    with pytest.raises(InputError, match="choose one of: saliency, ig"):
        explain_window(run, window(), "gradcam")
    with pytest.raises(InputError, match="a window of 8 frames"):
        explain_window(run, window()[:3], "saliency")
    with pytest.raises(InputError, match="the model has 4 classes"):
        explain_window(run, window(), "saliency", class_index=9)
    with pytest.raises(InputError, match="not a video classifier"):
        explain_window(SimpleNamespace(task="gan", run_id="x", metadata={}, model=None), window())
