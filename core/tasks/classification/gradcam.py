"""Grad-CAM's layer choice and the heat-map overlay that every explanation method (explain.py) is drawn with.

Grad-CAM (Selvaraju et al. 2016, arXiv:1610.02391) weights a layer's feature maps A (1, C, h, w) by the class
score's mean gradient per channel and keeps the positive part: ReLU(sum_k alpha_k A_k). Captum computes it
(explain.py); which layer A comes from is decided here. A hand-written version of the same formula agreed with
Captum's LayerGradCam to 0.0 max abs difference on cnn, resnet20, resnet18 and mobilenet_v3_small, so it was
retired (tests/core/tasks/test_explain.py keeps the formula as a reference).
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from torch import nn

from core.errors import LabError


RECTIFIERS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Hardswish)
NORMS = (nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d)
# The other methods of explain.py need no feature maps: the message names them.
NO_CONVOLUTION = "Grad-CAM needs a convolutional model; this one has none (e.g. an MLP): use integrated gradients, saliency or occlusion"


def find_target_layer(model: nn.Module) -> tuple[str, nn.Module]:
    """The module whose output is the deepest rectified feature map: the maps A of Grad-CAM.

    Start from the last registered nn.Conv2d. In a Sequential (our cnn; torchvision's conv-norm-activation
    blocks, as at the end of MobileNet and EfficientNet) take the activation that follows it; inside any
    other module (a residual block, whose output is the rectified sum) take that block. The raw conv
    output would not do: its negative responses are what the ReLU throws away, and with them in the
    weighted sum a small network's map can come out all zero.
    """
    convs = [(name, module) for name, module in model.named_modules() if isinstance(module, nn.Conv2d)]
    if not convs:
        raise LabError(NO_CONVOLUTION)
    name, conv = convs[-1]
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    if isinstance(parent, nn.Sequential):
        following = list(parent.named_children())
        position = [key for key, _ in following].index(child)
        for key, module in following[position + 1:position + 3]:  # conv [-> norm] -> activation
            if isinstance(module, RECTIFIERS):
                return (f"{parent_name}.{key}" if parent_name else key), module
            if not isinstance(module, NORMS):
                break
        # no activation follows the conv here (ConvNeXt's block): the enclosing residual block, if any
        grand_name = parent_name.rpartition(".")[0]
        grand = model.get_submodule(grand_name) if grand_name else model
        if grand is not model and not isinstance(grand, nn.Sequential):
            return grand_name, grand
        return name, conv
    return (parent_name, parent) if parent is not model else (name, conv)  # the model's output is no map


def jet(values: np.ndarray) -> np.ndarray:
    """A jet-like colour map: values in [0, 1] (H, W) -> (H, W, 3) uint8, blue (low) to red (high)."""
    v = np.clip(values, 0.0, 1.0)[..., None]  # (H, W, 1)
    centres = np.array([0.75, 0.5, 0.25], dtype=np.float32)  # where R, G and B peak
    rgb = np.clip(1.5 - np.abs(4.0 * (v - centres)), 0.0, 1.0)  # (H, W, 3) piecewise-linear ramps
    return np.rint(rgb * 255.0).astype(np.uint8)


def overlay(image: Image.Image, heat: np.ndarray, alpha: float = 0.45) -> Image.Image:
    """The picture with the heat map laid over it in colour, at the picture's own size.

    Pass `predictor.view(image)` to see exactly the pixels the model saw (the crop, for pretrained models).
    """
    from core.data.images import to_rgb

    base = to_rgb(image)
    heat = np.asarray(heat, dtype=np.float32)
    if heat.ndim != 2:
        raise LabError(f"a heat map must be (H, W), got shape {heat.shape}")
    # Resize the heat as a float image so the colours stay smooth however small the map is.
    resized = np.asarray(Image.fromarray(heat).resize(base.size, Image.Resampling.BILINEAR), dtype=np.float32)
    colours = jet(resized).astype(np.float32)  # (H, W, 3)
    pixels = np.asarray(base, dtype=np.float32)  # (H, W, 3)
    blended = (1.0 - alpha) * pixels + alpha * colours
    return Image.fromarray(np.clip(np.rint(blended), 0, 255).astype(np.uint8))
