"""Explanations of image classifiers (core/tasks/classification/explain.py, layers.py) against references computed by
hand: Grad-CAM's formula, the input gradient of a linear model, integrated gradients' completeness, occlusion of a
planted patch; the layer view's shapes; and `python -m core explain` on a real run."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image
from torch import nn

from core.errors import LabError
from core.tasks.classification.explain import METHODS, attribute, explain, private_copy
from core.tasks.classification.layers import activation_maps, first_filters
from core.tasks.classification.predictor import Predictor


def predictor_for(model: nn.Module, size: int, channels: int = 3, classes: int = 10) -> Predictor:
    return Predictor(model=model.eval(), classes=[f"c{i}" for i in range(classes)], mean=[0.5] * channels,
                     std=[0.25] * channels, image_size=size, channels=channels, label="test", source="run")


def noise(size: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8))


def reference_grad_cam(predictor, image, layer: nn.Module, class_index: int) -> np.ndarray:
    """The hand-written Grad-CAM the lab used before Captum: alpha_k = mean dy_c/dA_k, ReLU(sum_k alpha_k A_k)."""
    captured = []
    handle = layer.register_forward_hook(lambda module, inputs, output: captured.append(output))
    try:
        x = predictor.prepare(image).unsqueeze(0)  # (1, C, H, W)
        logits = predictor.model(x)  # (1, K)
        (gradient,) = torch.autograd.grad(logits[0, class_index], captured[-1])  # (1, C, h, w)
    finally:
        handle.remove()
    weights = gradient.mean(dim=(2, 3), keepdim=True)  # (1, C, 1, 1)
    cam = F.relu((weights * captured[-1].detach()).sum(dim=1, keepdim=True))  # (1, 1, h, w)
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
    return (cam / cam.max()).numpy() if cam.max() > 0 else torch.zeros_like(cam).numpy()


@pytest.mark.parametrize("name, size", [("cnn", 32), ("resnet20", 32), ("mobilenet_v3_small", 96)])
def test_captum_grad_cam_matches_the_hand_written_formula(name, size):
    from core.models import build
    from core.tasks.classification.gradcam import find_target_layer
    torch.manual_seed(0)
    model = (torchvision.models.mobilenet_v3_small() if name == "mobilenet_v3_small"
             else build(name, num_classes=10, in_channels=3, image_size=size))
    predictor = predictor_for(model, size, classes=1000 if name == "mobilenet_v3_small" else 10)
    _, layer = find_target_layer(model)
    worst = 0.0
    for seed in range(3):
        image = noise(size, seed)
        ours = explain(predictor, image, "gradcam", class_index=seed)
        assert ours.shape == (size, size) and ours.dtype == np.float32 and 0.0 <= ours.min() <= ours.max() <= 1.0
        worst = max(worst, float(np.abs(ours - reference_grad_cam(predictor, image, layer, seed)).max()))
    assert worst < 1e-5, worst
    # The shared model is left as it was: no parameter gradient, no hook left behind.
    assert all(p.grad is None for p in model.parameters())
    assert not any(m._forward_hooks for m in model.modules())


def test_the_private_copy_shares_weights_but_not_hooks():
    model = torchvision.models.resnet18()
    copy = private_copy(model)
    assert copy.conv1.weight is model.conv1.weight and copy.bn1.running_mean is model.bn1.running_mean
    copy.layer4.register_forward_hook(lambda *args: None)
    assert not model.layer4._forward_hooks


def test_saliency_is_the_largest_absolute_input_gradient_of_a_linear_model():
    torch.manual_seed(0)
    linear = nn.Linear(3 * 6 * 6, 4)
    model = nn.Sequential(nn.Flatten(), linear)
    predictor = predictor_for(model, 6, classes=4)
    heat = explain(predictor, noise(6), "saliency", class_index=2)
    # y_2 = w_2 . x + b, so dy_2/dx = w_2 whatever the picture: |w_2| as (C, H, W), max over the channels
    by_hand = linear.weight[2].detach().abs().view(3, 6, 6).max(dim=0).values
    assert np.allclose(heat, (by_hand / by_hand.max()).numpy(), atol=1e-6)


@pytest.mark.parametrize("kind", ["smooth", "cnn"])
def test_integrated_gradients_add_up_to_the_score_difference(kind):
    from core.models import build
    torch.manual_seed(0)
    if kind == "smooth":
        model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(8 * 16 * 16, 5))
    else:
        model = build("cnn", num_classes=5, in_channels=3, image_size=16)
    predictor = predictor_for(model, 16, classes=5)
    image = noise(16, 3)
    result = attribute(predictor, image, "ig")
    with torch.no_grad():
        x = result.inputs  # (1, C, H, W)
        gap = float(model(x)[0, result.class_index] - model(torch.zeros_like(x))[0, result.class_index])
    total = float(result.values.sum())
    # Completeness (Sundararajan et al. 2017): exact for the integral, up to the 32-point quadrature here
    tolerance = 1e-3 if kind == "smooth" else 0.05
    assert total == pytest.approx(gap, rel=tolerance, abs=1e-4), (total, gap)
    heat = explain(predictor, image, "ig")
    assert heat.shape == (16, 16) and heat.max() == pytest.approx(1.0)


class PatchModel(nn.Module):
    """Looks only at rows 8..11, columns 20..23: class 0's score is the patch's sum, class 1's its negative."""

    def forward(self, x):  # (B, C, H, W) -> (B, 2)
        patch = x[:, :, 8:12, 20:24].sum(dim=(1, 2, 3))
        return torch.stack([patch, -patch], dim=1)


def test_occlusion_finds_the_patch_the_model_looks_at():
    pixels = np.full((32, 32, 3), 128, dtype=np.uint8)
    pixels[8:12, 20:24] = 255  # bright where the model looks
    predictor = predictor_for(PatchModel(), 32, classes=2)
    heat = explain(predictor, Image.fromarray(pixels), "occlusion")
    assert heat.shape == (32, 32)
    inside = np.zeros((32, 32), dtype=bool)
    inside[8:12, 20:24] = True
    assert heat[inside].min() > 0.5 and heat.max() == pytest.approx(1.0)
    near = np.zeros((32, 32), dtype=bool)
    near[4:16, 16:28] = True  # a 4 px window moved by 2 px reaches at most 4 px beyond the patch
    assert heat[~near].max() == 0.0
    # Covering the patch only raises class 1's score: nothing speaks for it, an all-zero map.
    assert explain(predictor, Image.fromarray(pixels), "occlusion", class_index=1).max() == 0.0


def test_every_method_on_an_mlp_but_grad_cam_which_names_the_others():
    from core.models import build
    model = build("mlp", num_classes=10, in_channels=1, image_size=8)
    predictor = predictor_for(model, 8, channels=1)
    for method in ("ig", "saliency", "occlusion"):
        heat = explain(predictor, noise(8), method)
        assert heat.shape == (8, 8) and 0.0 <= heat.min() and heat.max() <= 1.0
    with pytest.raises(LabError, match="integrated gradients, saliency or occlusion"):
        explain(predictor, noise(8), "gradcam")
    with pytest.raises(LabError, match="unknown explanation method 'lime'.*gradcam, ig, saliency, occlusion"):
        explain(predictor, noise(8), "lime")
    with pytest.raises(LabError, match="out of range"):
        explain(predictor, noise(8), "saliency", class_index=10)
    assert set(METHODS) == {"gradcam", "ig", "saliency", "occlusion"}
    assert all(p.grad is None for p in model.parameters())


def test_explaining_inside_inference_mode():
    """A Streamlit page may call in while inference mode is on."""
    from core.models import build
    predictor = predictor_for(build("cnn", num_classes=3, in_channels=3, image_size=16), 16, classes=3)
    with torch.inference_mode():
        for method in METHODS:
            assert explain(predictor, noise(16), method).shape == (16, 16)


def test_a_frozen_model_is_explained_too():
    """A run trained with a frozen backbone: no parameter asks for gradients, the maps still come out."""
    predictor = predictor_for(torchvision.models.resnet18(), 64, classes=1000)
    for parameter in predictor.model.parameters():
        parameter.requires_grad_(False)
    for method in METHODS:
        heat = explain(predictor, noise(64), method)
        assert heat.shape == (64, 64) and heat.max() == pytest.approx(1.0)


# ---- what the layers see --------------------------------------------------------------------------------

@pytest.mark.parametrize("name, channels", [("cnn", 1), ("resnet20", 3)])
def test_the_layer_view_has_one_entry_per_convolution_with_its_shape(name, channels):
    from core.models import build
    model = build(name, num_classes=10, in_channels=channels, image_size=16)
    predictor = predictor_for(model, 16, channels=channels)
    convs = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    expected = {}
    handles = [m.register_forward_hook(lambda mod, i, o, n=n: expected.update({n: tuple(o.shape[1:])}))
               for n, m in convs]
    with torch.no_grad():
        model(predictor.prepare(noise(16)).unsqueeze(0))
    for handle in handles:
        handle.remove()

    maps = activation_maps(predictor, noise(16), max_channels=6)
    assert [m.name for m in maps] == [n for n, _ in convs]
    assert all(m.shape == expected[m.name] and m.kind == "Conv2d" for m in maps)
    for m in maps:
        c, h, w = m.shape
        shown = min(6, c)
        factor = max(1, -(-32 // min(h, w)))  # tiles are enlarged to at least 32 px
        assert m.shown == shown and m.grid.mode == "L"
        assert m.grid.size == (shown * (w * factor + 2) - 2, h * factor)  # one row of up to 8 tiles
    assert not any(module._forward_hooks for module in model.modules())

    filters = first_filters(model)
    first = convs[0][1].weight
    assert filters.name == convs[0][0] and filters.shape == tuple(first.shape)
    assert filters.grid.mode == ("RGB" if channels == 3 else "L") and filters.shown == min(64, first.shape[0])


def test_the_layer_view_of_an_mlp_is_empty():
    from core.models import build
    model = build("mlp", num_classes=10, in_channels=1, image_size=8)
    assert activation_maps(predictor_for(model, 8, channels=1), noise(8)) == []
    assert first_filters(model) is None


# ---- the CLI ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    from conftest import train_in_process
    from core.presets import preset
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAB_HOME", str(tmp_path_factory.mktemp("lab")))
        patch.setenv("LAB_HEARTBEAT_S", "0.2")
        yield train_in_process(preset("digits-cnn").replace(**{"optim.epochs": 1, "data.limit": 300}))
        from core.inference import clear_caches
        clear_caches()


def digit_png(path) -> None:
    from sklearn.datasets import load_digits
    image = Image.fromarray((load_digits().images[3] * 255 / 16).astype("uint8"), mode="L").resize((64, 64))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())


@pytest.mark.parametrize("method", METHODS)
def test_cli_writes_the_overlay_and_prints_the_class(digits_run, tmp_path, capsys, method):
    from core.cli import main
    from core.tasks.classification.predictor import load_run_predictor
    picture = tmp_path / "three.png"
    digit_png(picture)
    out = tmp_path / "out" / f"{method}.png"
    assert main(["explain", digits_run, str(picture), "--method", method, "--out", str(out)]) == 0
    shown = Image.open(out)
    assert shown.format == "PNG" and shown.size == (8, 8) and shown.mode == "RGB"  # what the model saw: 8 x 8
    label = load_run_predictor(digits_run).top_k(Image.open(picture), k=1)[0][0]
    printed = capsys.readouterr().out
    assert f"best checkpoint: {label} (" in printed and str(out) in printed


@pytest.mark.parametrize("case, message", [
    ("corrupt", "is not an image in a supported format"),
    ("missing", "does not exist"),
    ("method", "unknown explanation method 'lime'"),
    ("run", "nope"),
    ("suffix", "ending in .png"),
])
def test_cli_fails_cleanly_and_writes_nothing(digits_run, tmp_path, capsys, case, message):
    from core.cli import main
    picture = tmp_path / "three.png"
    digit_png(picture)
    if case == "corrupt":
        picture.write_bytes(b"this is not an image")
    if case == "missing":
        picture = tmp_path / "absent.png"
    out = tmp_path / ("out.jpg" if case == "suffix" else "out.png")
    args = ["explain", "nope" if case == "run" else digits_run, str(picture), "--out", str(out),
            "--method", "lime" if case == "method" else "saliency"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert not out.exists() and list(tmp_path.glob("out*")) == []
