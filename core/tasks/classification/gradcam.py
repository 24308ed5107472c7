"""Grad-CAM (Selvaraju et al. 2017, arXiv:1610.02391): where in the picture the evidence for a class lies.

For the last convolutional layer's rectified activations A (1, C, h, w) and the class score y_c (a logit):
    alpha_k = mean over (i, j) of dy_c / dA_k[i, j]        (C,)   channel importance
    cam     = ReLU(sum_k alpha_k * A_k)                     (h, w)
upsampled bilinearly to the model's input size and scaled to [0, 1].

The gradient is taken with `torch.autograd.grad` with respect to A alone, so no parameter's
`.grad` is ever written: the shared, cached predictor is left exactly as it was.
"""

from __future__ import annotations

import threading

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from core.errors import LabError


RECTIFIERS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Hardswish)
NORMS = (nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d)


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
        raise LabError("Grad-CAM needs a convolutional model; this one has no convolutional layer (e.g. an MLP)")
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


def grad_cam(predictor, image: Image.Image, class_index: int | None = None) -> np.ndarray:
    """Heat map (H, W) float32 in [0, 1] at the model's input size for `class_index` (default: the top class)."""
    model = predictor.model
    _, layer = find_target_layer(model)
    x = predictor.prepare(image).unsqueeze(0).to(predictor.device)  # (1, C, H, W)
    owner = threading.get_ident()
    captured: list[torch.Tensor] = []

    def keep_activation(module, inputs, output):
        # Other threads may run the same cached model meanwhile: record only our own forward pass.
        if threading.get_ident() != owner or output.dim() != 4:
            return None
        if not output.requires_grad:  # frozen layers: still let the gradient reach A
            output = output.detach().requires_grad_()
            captured.append(output)
            return output
        captured.append(output)
        return None

    handle = layer.register_forward_hook(keep_activation)
    try:
        # inference_mode(False): callers (a Streamlit page) may sit inside inference mode.
        with torch.inference_mode(False), torch.enable_grad():
            logits = model(x.clone())  # (1, K)
            if not captured:
                raise LabError("Grad-CAM could not see the convolutional layer's output for this model")
            if class_index is None:
                class_index = int(logits.argmax(dim=1))
            if not 0 <= class_index < logits.shape[1]:
                raise LabError(f"class index {class_index} is out of range; the model has {logits.shape[1]} classes")
            activation = captured[-1]  # (1, C, h, w)
            (gradient,) = torch.autograd.grad(logits[0, class_index], activation)  # (1, C, h, w)
    finally:
        handle.remove()

    with torch.no_grad():
        weights = gradient.mean(dim=(2, 3), keepdim=True)  # (1, C, 1, 1): alpha_k
        cam = F.relu((weights * activation.detach()).sum(dim=1, keepdim=True))  # (1, 1, h, w)
        size = x.shape[-2:]
        cam = F.interpolate(cam.float(), size=size, mode="bilinear", align_corners=False)[0, 0]  # (H, W)
        top = float(cam.max())
        cam = cam / top if top > 0 else torch.zeros_like(cam)  # nothing speaks for the class: all zero
    return cam.clamp_(0.0, 1.0).cpu().numpy().astype(np.float32)


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
