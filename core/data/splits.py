"""The in-memory form of every image data set: uint8 tensors per split, plus what they mean.

Builders (one per source) return an `ImageSplits` at the source's native size; `finalize` then
applies what the DataConfig asks for (resize, limit) and checks the result once, so every model
and trainer can trust the shapes, dtypes and label range without checking again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from core.errors import DataError

# Images per chunk for float work (statistics, resizing): bounds the temporary float copy to
# roughly 1024 * 3 * 64 * 64 * 4 bytes = 50 MB at 64px, instead of a float copy of the whole set.
_CHUNK = 1024
_MAX_BYTES = 8 * 1024**3  # resized uint8 images beyond this would not fit next to a model on most machines


def channel_mean_std(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std of uint8 images (N, C, H, W), scaled to [0, 1].

    Summed chunk by chunk in float64 so the result does not depend on chunking and no float copy
    of the whole set is ever made. A constant channel gets std 1.0 rather than 0, so normalising by
    it can never divide by zero; no images at all give 0.5 and 0.5.
    """
    if x.numel() == 0:
        return (0.5,) * x.shape[1], (0.5,) * x.shape[1]
    total = torch.zeros(x.shape[1], dtype=torch.float64)
    total_sq = torch.zeros(x.shape[1], dtype=torch.float64)
    for chunk in x.split(_CHUNK):
        c = chunk.to(torch.float64)  # (n, C, H, W)
        total += c.sum(dim=(0, 2, 3))
        total_sq += c.square().sum(dim=(0, 2, 3))
    count = x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / count
    std = (total_sq / count - mean.square()).clamp_min(0.0).sqrt()
    std = torch.where(std > 1e-6, std, torch.ones_like(std))  # in 0..255 units still
    return tuple(float(m) / 255.0 for m in mean), tuple(float(s) / 255.0 for s in std)


@dataclass
class ImageSplits:
    train_x: torch.Tensor  # (N, C, H, W) uint8
    train_y: torch.Tensor  # (N,) int64 class indices into `classes`
    val_x: torch.Tensor  # (M, C, H, W) uint8
    val_y: torch.Tensor  # (M,) int64
    classes: list[str]
    channels: int
    image_size: int
    skipped: int = 0  # files that could not be decoded (folder data sets); reported, never fatal
    source: str = ""  # where the data came from, in words, for the UI and run records

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def mean_std(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and (population) std of the training images scaled to [0, 1]."""
        return channel_mean_std(self.train_x)


def shuffle_pairs(x: torch.Tensor, y: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The same seeded permutation applied to images (N, ...) and labels (N,)."""
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(int(seed)))
    return x[order], y[order]


def split_train_val(x: torch.Tensor, y: torch.Tensor, val_fraction: float, seed: int):
    """Seeded random split for sources without a validation split of their own.

    Returns (train_x, train_y, val_x, val_y); both parts come out shuffled, so `limit` can take
    the first training samples. With two or more samples each side gets at least one.
    """
    n = len(y)
    if len(x) != n:
        raise DataError(f"images and labels disagree in number: {len(x)} images, {n} labels")
    n_val = int(round(n * float(val_fraction)))
    if n >= 2:
        n_val = min(max(n_val, 1), n - 1)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
    val_idx, train_idx = order[:n_val], order[n_val:]
    return x[train_idx], y[train_idx], x[val_idx], y[val_idx]


def resize_uint8(x: torch.Tensor, size: int) -> torch.Tensor:
    """(N, C, H, W) uint8 -> (N, C, size, size) uint8, bilinear with antialiasing, chunk by chunk."""
    if x.shape[-2:] == (size, size):
        return x
    out = torch.empty((x.shape[0], x.shape[1], size, size), dtype=torch.uint8)
    for start in range(0, x.shape[0], _CHUNK):
        chunk = x[start:start + _CHUNK].to(torch.float32)
        # antialias only changes downsampling (it low-pass filters first); upsampling is plain bilinear.
        resized = F.interpolate(chunk, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        out[start:start + _CHUNK] = resized.round_().clamp_(0, 255).to(torch.uint8)
    return out


def finalize(raw: ImageSplits, cfg, info) -> ImageSplits:
    """Apply cfg.image_size and cfg.limit to a builder's output and check it is usable.

    `raw.train_x` must already be shuffled by the builder (seeded), so keeping its first `limit`
    samples is a fair sample rather than, say, the first few classes of a sorted folder.
    """
    _check_consistent(raw, info.name)
    out = raw
    if cfg.limit is not None and cfg.limit < len(out.train_y):
        # Before resizing, so only kept images are resized. clone: a slice would keep the whole
        # original storage alive.
        out = replace(out, train_x=out.train_x[:cfg.limit].clone(), train_y=out.train_y[:cfg.limit].clone())
    size = cfg.image_size
    if size is not None and size != raw.image_size:
        count = len(out.train_y) + len(out.val_y)
        needed = count * out.channels * size * size
        if needed > _MAX_BYTES:
            raise DataError(f"data.image_size {size} would make {count:,} images take {needed / 1e9:.1f} GB of "
                            f"memory; use a smaller size or set data.limit")
        out = replace(out, train_x=resize_uint8(out.train_x, size), val_x=resize_uint8(out.val_x, size),
                      image_size=size)
    if len(out.train_y) == 0:
        raise DataError(f"data set '{info.name}' has no training images ({out.source})")
    if len(out.val_y) == 0:
        raise DataError(f"data set '{info.name}' has no validation images ({out.source}); add a val/ folder "
                        "or more images, or raise data.val_fraction")
    return out


def _check_consistent(s: ImageSplits, name: str) -> None:
    """Builders are ours, but folders are the user's: fail here with words, not later with a shape error."""
    for split, x, y in (("train", s.train_x, s.train_y), ("val", s.val_x, s.val_y)):
        if x.dtype != torch.uint8 or x.dim() != 4:
            raise DataError(f"data set '{name}': {split} images must be uint8 (N, C, H, W), "
                            f"got {x.dtype} {tuple(x.shape)}")
        if y.dtype != torch.int64 or y.dim() != 1:
            raise DataError(f"data set '{name}': {split} labels must be int64 (N,), got {y.dtype} {tuple(y.shape)}")
        if x.shape[0] != y.shape[0]:
            raise DataError(f"data set '{name}': {split} has {x.shape[0]} images but {y.shape[0]} labels")
        if x.shape[0] and (x.shape[1] != s.channels or x.shape[2] != s.image_size or x.shape[3] != s.image_size):
            raise DataError(f"data set '{name}': {split} images are {tuple(x.shape[1:])}, expected "
                            f"({s.channels}, {s.image_size}, {s.image_size})")
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= len(s.classes)):
            raise DataError(f"data set '{name}': {split} labels fall outside the {len(s.classes)} classes")
