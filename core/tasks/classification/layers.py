"""What the layers see: the first convolution's filters and every convolution's activation maps for one picture.

The view DIGITS showed, after Zeiler & Fergus 2013 (arXiv:1311.2901), who looked inside a trained network to see
what each layer responds to: the first layer's filters are small pictures themselves (edges, colour blobs), and
deeper layers answer with ever coarser maps of ever more channels. Each map is scaled to [0, 1] on its own, so a
channel's pattern shows whatever its range; the grids are plain grey PIL images, ready to draw.

The forward hooks sit on a private copy of the module tree that shares the weights (explain.private_copy): other
sessions classifying with the same cached predictor at the same moment never run them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn

MAX_CHANNELS = 16  # maps shown per layer: the first ones; enough to see a layer's character
MAX_FILTERS = 64
MIN_TILE = 32  # small maps (a 4 x 4 deep layer, a 3 x 3 kernel) are enlarged to at least this many pixels a side
GAP = 2  # white pixels between tiles


@dataclass
class LayerMaps:
    name: str  # the module's path in the model: "features.3", "layer2.0.conv1"
    kind: str  # its class: "Conv2d"
    shape: tuple[int, int, int]  # (C, h, w) of its output for one picture
    shown: int  # how many of the C channels the grid holds
    grid: Image.Image  # grey, the first `shown` maps tiled row by row


@dataclass
class Filters:
    name: str
    shape: tuple[int, int, int, int]  # (out, in, k, k) of the weight
    shown: int
    grid: Image.Image  # RGB for a 3-channel input (each filter a colour patch), grey otherwise


def conv_layers(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    return [(name, module) for name, module in model.named_modules() if isinstance(module, nn.Conv2d)]


def scale_each(maps: np.ndarray) -> np.ndarray:
    """(N, ...) -> the same in [0, 1], each of the N scaled by its own min and max (a constant one becomes 0)."""
    flat = maps.reshape(len(maps), -1)
    low, high = flat.min(axis=1), flat.max(axis=1)
    span = np.where(high > low, high - low, 1.0)
    return ((flat - low[:, None]) / span[:, None]).reshape(maps.shape)


def tile(maps: np.ndarray, columns: int | None = None) -> Image.Image:
    """(N, h, w) or (N, h, w, 3) values in [0, 1] -> one image of N tiles, each enlarged by a whole factor (nearest,
    so single pixels stay sharp) to at least MIN_TILE a side."""
    count, h, w = maps.shape[:3]
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    factor = max(1, math.ceil(MIN_TILE / min(h, w)))
    th, tw = h * factor, w * factor
    pixels = np.rint(np.clip(maps, 0.0, 1.0) * 255.0).astype(np.uint8)
    pixels = pixels.repeat(factor, axis=1).repeat(factor, axis=2)  # (N, th, tw[, 3])
    canvas = np.full((rows * (th + GAP) - GAP, columns * (tw + GAP) - GAP, *maps.shape[3:]), 255, dtype=np.uint8)
    for index in range(count):
        top, left = (index // columns) * (th + GAP), (index % columns) * (tw + GAP)
        canvas[top:top + th, left:left + tw] = pixels[index]
    return Image.fromarray(canvas)


def first_filters(model: nn.Module, max_filters: int = MAX_FILTERS) -> Filters | None:
    """The first convolution's kernels as a grid (None for a model without one, e.g. an MLP)."""
    convs = conv_layers(model)
    if not convs:
        return None
    name, conv = convs[0]
    weight = conv.weight.detach().float().cpu()  # (out, in, k, k)
    shown = min(max_filters, weight.shape[0])
    kernels = weight[:shown]
    if kernels.shape[1] == 3:
        patches = scale_each(kernels.permute(0, 2, 3, 1).numpy())  # (N, k, k, 3): a filter is a colour patch
    else:  # grey input (or an unusual stem): the mean over input channels
        patches = scale_each(kernels.mean(dim=1).numpy())  # (N, k, k)
    return Filters(name=name, shape=tuple(weight.shape), shown=shown, grid=tile(patches))


def activation_maps(predictor, image: Image.Image, max_channels: int = MAX_CHANNELS) -> list[LayerMaps]:
    """One entry per nn.Conv2d, in the order the forward pass reaches them: the first `max_channels` output maps
    for `image`, prepared exactly as for classifying it. An empty list for a model without convolutions."""
    from core.tasks.classification.explain import private_copy

    model = private_copy(predictor.model)
    convs = conv_layers(model)
    seen: list[tuple[str, nn.Module, tuple, torch.Tensor]] = []  # name, module, (C, h, w), (C_shown, h, w)

    def keep(name):
        def hook(module, inputs, output):
            # clone: an in-place ReLU right after would otherwise rewrite what we keep
            maps = output[0, :max_channels].detach().float().cpu().clone()
            seen.append((name, module, tuple(output.shape[1:]), maps))
        return hook

    handles = [module.register_forward_hook(keep(name)) for name, module in convs]
    try:
        x = predictor.prepare(image).unsqueeze(0).to(predictor.device)  # (1, C, H, W)
        with torch.inference_mode():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    out = []
    for name, module, shape, maps in seen:
        out.append(LayerMaps(name=name, kind=type(module).__name__, shape=shape, shown=len(maps),
                             grid=tile(scale_each(maps.numpy()), columns=min(8, len(maps)))))
    return out
