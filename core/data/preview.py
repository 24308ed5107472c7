"""What a data set looks like before training: sample images per class, class counts, sizes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class DataPreview:
    classes: list[str]
    train_counts: list[int]
    val_counts: list[int]
    image_size: int
    channels: int
    samples: list[list[np.ndarray]]  # per class, up to `per_class` (H, W, C) uint8 images
    skipped: int
    source: str

    @property
    def train_size(self) -> int:
        return sum(self.train_counts)


def preview(data_cfg, *, seed: int = 0, per_class: int = 6) -> DataPreview:
    """Load (from the cache when possible) the configured data set and summarise it."""
    import torch
    from core.data import load_dataset
    splits = load_dataset(data_cfg, seed=seed)
    k = splits.num_classes
    train_counts = torch.bincount(splits.train_y, minlength=k).tolist()
    val_counts = torch.bincount(splits.val_y, minlength=k).tolist()
    samples = []
    for label in range(k):
        index = (splits.train_y == label).nonzero().flatten()[:per_class]
        images = splits.train_x[index].permute(0, 2, 3, 1).numpy()  # (n, H, W, C)
        samples.append([img[:, :, 0] if img.shape[2] == 1 else img for img in images])
    return DataPreview(list(splits.classes), train_counts, val_counts, splits.image_size, splits.channels,
                       samples, splits.skipped, splits.source)


def mosaic(samples: list[list[np.ndarray]], *, cell: int = 40, max_classes: int = 20) -> np.ndarray:
    """One (rows*cell, classes*cell, 3) uint8 image: a column of samples per class. Each sample is shown whole:
    a small one enlarged by a whole factor without blurring, a large one shrunk to fit (never cropped)."""
    columns = samples[:max_classes]
    rows = max((len(c) for c in columns), default=0)
    grid = np.full((max(rows, 1) * cell, len(columns) * cell, 3), 255, dtype=np.uint8)
    for c, images in enumerate(columns):
        for r, img in enumerate(images):
            if img.ndim == 2:
                img = np.repeat(img[:, :, None], 3, axis=2)
            big = _fit(img, cell - 2)
            top, left = r * cell + (cell - big.shape[0]) // 2, c * cell + (cell - big.shape[1]) // 2
            grid[top:top + big.shape[0], left:left + big.shape[1]] = big
    return grid


def _fit(img: np.ndarray, side: int) -> np.ndarray:
    """(H, W, 3) uint8 within side x side, aspect kept: nearest-neighbour up by a whole factor, area-averaged down."""
    h, w = img.shape[:2]
    if max(h, w) <= side:
        scale = side // max(h, w)
        return img.repeat(scale, axis=0).repeat(scale, axis=1)
    from PIL import Image
    ratio = side / max(h, w)
    size = (max(1, round(w * ratio)), max(1, round(h * ratio)))
    return np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BOX))
