"""Decoding one untrusted image file into a fixed-size RGB array, the same way for training and inference.

Folder data sets decode with `decode_image`; inference on an uploaded picture can call the same
function, so a model never sees pixels prepared differently from the ones it was trained on.
Pillow's decompression-bomb guard stays on and only common photo formats are opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps

if TYPE_CHECKING:  # torch is imported by the functions that need it: listing data sets stays light
    import torch

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
# Pillow plugins we let open a file: whatever its extension claims, nothing exotic gets parsed.
# (The JPEG plugin also opens MPO, the multi-picture JPEG some cameras write under a .jpg name.)
PIL_FORMATS = ("JPEG", "PNG", "BMP", "GIF", "WEBP", "TIFF")

_HIGH_DEPTH_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_EXIF_ORIENTATION = 0x0112


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode (1, L, P, RGBA, CMYK, YCbCr, 16-bit, float...) as 8-bit RGB.

    Transparent pixels are laid over white rather than dropped (a plain convert would show whatever
    colour hides under alpha 0, often black), and 16-bit greys are scaled, not clipped at 255.
    """
    if img.getexif().get(_EXIF_ORIENTATION, 1) != 1:
        img = ImageOps.exif_transpose(img)  # phone photos store their rotation in EXIF
    if img.mode == "RGB":
        return img
    if img.mode in _HIGH_DEPTH_MODES:
        arr = np.asarray(img, dtype=np.float32)
        top = 65535.0 if img.mode.startswith("I;16") or (arr.size and float(arr.max()) > 255.0) else 255.0
        grey = np.clip(np.rint(arr * (255.0 / top)), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in _ALPHA_MODES:
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        canvas.alpha_composite(rgba)
        return canvas.convert("RGB")
    return img.convert("RGB")


def decode_image(source, size: int | None = None) -> np.ndarray:
    """A file path or binary file object -> (size, size, 3) uint8 array (native size when size is None).

    Raises whatever Pillow raises for an empty, truncated, unsupported or bomb-sized file
    (UnidentifiedImageError, OSError, DecompressionBombError...): callers decide whether to skip.
    The image is squashed to a square, like torchvision's Resize((size, size)), so nothing is cut off.
    """
    with Image.open(source, formats=PIL_FORMATS) as img:
        if size is not None and img.format in ("JPEG", "MPO"):
            # Let libjpeg decode at 1/2, 1/4 or 1/8 scale when the target is that much smaller:
            # several times faster for large photos, and still at least `size` pixels on each side.
            img.draft("RGB", (size, size))
        img.load()
        rgb = to_rgb(img)
    if size is not None and rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)  # Pillow antialiases when shrinking
    return np.asarray(rgb, dtype=np.uint8)


def grid_png(images: torch.Tensor, nrow: int = 8, min_cell: int = 32, padding: int = 2) -> bytes:
    """(N, C, H, W) in [0, 1] -> one PNG: a grid `nrow` images wide, small images enlarged without blur."""
    import io
    import math

    from torch.nn import functional as F
    from torchvision.utils import make_grid

    images = images.detach().float().clamp(0, 1).cpu()
    scale = max(1, math.ceil(min_cell / images.shape[-1]))
    if scale > 1:
        images = F.interpolate(images, scale_factor=scale, mode="nearest")  # crisp pixels
    grid = make_grid(images, nrow=max(1, nrow), padding=padding, pad_value=1.0)  # (3, H', W'); grey -> RGB
    array = (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def to_arrays(images: torch.Tensor) -> list[np.ndarray]:
    """(N, C, H, W) in [0, 1] -> uint8 arrays (H, W) for grey or (H, W, 3) for colour."""
    import torch
    x = (images.detach().float().clamp(0, 1).cpu() * 255).round().to(torch.uint8)
    x = x.permute(0, 2, 3, 1).numpy()  # (N, H, W, C)
    return [img[:, :, 0] if img.shape[2] == 1 else img for img in x]
