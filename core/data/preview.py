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
    """One (rows*cell, classes*cell, 3) uint8 image: a column of samples per class, enlarged without blurring."""
    columns = samples[:max_classes]
    rows = max((len(c) for c in columns), default=0)
    grid = np.full((max(rows, 1) * cell, len(columns) * cell, 3), 255, dtype=np.uint8)
    for c, images in enumerate(columns):
        for r, img in enumerate(images):
            if img.ndim == 2:
                img = np.repeat(img[:, :, None], 3, axis=2)
            h, w = img.shape[:2]
            scale = max(1, (cell - 2) // max(h, w))
            big = img.repeat(scale, axis=0).repeat(scale, axis=1)[:cell - 2, :cell - 2]  # nearest-neighbour
            top, left = r * cell + (cell - big.shape[0]) // 2, c * cell + (cell - big.shape[1]) // 2
            grid[top:top + big.shape[0], left:left + big.shape[1]] = big
    return grid
