"""A generated data set of coloured shapes on noisy backgrounds: offline, instant, and learnable.

Every image is drawn at once for all samples of a class with array masks over a shared pixel grid
(no per-image Python loop), so 6,000 images take a few tenths of a second. Everything random comes
from one seeded numpy generator: the same seed and size give byte-identical tensors.
"""

from __future__ import annotations

import numpy as np

from core.data import register_dataset

SHAPE_CLASSES = ("circle", "square", "triangle", "cross", "ring", "diamond")
SIZE = 32
_MIN_RADIUS, _MAX_RADIUS = 6.0, 12.0  # pixels; small enough to move around, big enough to tell apart
_MAX_TILT = 0.26  # radians (about 15 degrees): more would turn a square into a diamond
_NOISE_LEVELS = 25  # uniform background/foreground noise of 0..24 grey levels


def _mask(name: str, u, v, r):
    """Inside-the-shape mask for one class. u, v: (n, S, S) coordinates in the shape's frame, r: (n, 1, 1)."""
    if name == "circle":
        return u * u + v * v <= r * r
    if name == "ring":
        d2 = u * u + v * v
        return (d2 <= r * r) & (d2 >= (0.55 * r) ** 2)
    if name == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.8 * r
    if name == "diamond":
        return np.abs(u) + np.abs(v) <= r
    if name == "triangle":
        # apex at v = -r (up), base at v = 0.7r with half-width 0.95r
        return (v >= -r) & (v <= 0.7 * r) & (np.abs(u) <= 0.95 * (v + r) / 1.7)
    if name == "cross":
        arm = 0.28 * r
        au, av = np.abs(u), np.abs(v)
        return ((au <= arm) & (av <= r)) | ((av <= arm) & (au <= r))
    raise AssertionError(name)


def generate_shapes(num_samples: int, seed: int):
    """(num_samples, 3, 32, 32) uint8 images and (num_samples,) int64 labels, balanced over classes.

    Drawn with numpy in float32 and uint8: on small CPUs its element-wise kernels on fresh
    (n, 32, 32) arrays are several times faster than torch's, and PCG64 streams are reproducible.
    """
    import torch  # here, not at the top: registering the data set must not import torch

    rng = np.random.default_rng(int(seed))
    n, k = int(num_samples), len(SHAPE_CLASSES)
    f32 = np.float32

    # Balanced labels in a random order, so every class is present whenever n >= k.
    labels = rng.permutation(np.arange(n) % k)  # (n,)
    radius = rng.uniform(_MIN_RADIUS, _MAX_RADIUS, n).astype(f32)  # (n,)
    # Centres keep the circle of radius r inside the image (corners of tilted shapes may clip).
    cx = (radius + 1 + rng.random(n, dtype=f32) * (SIZE - 2 * radius - 2)).astype(f32)
    cy = (radius + 1 + rng.random(n, dtype=f32) * (SIZE - 2 * radius - 2)).astype(f32)
    tilt = rng.uniform(-_MAX_TILT, _MAX_TILT, n).astype(f32)
    # Shape brighter than its background in every channel: colour carries no class signal, but the
    # outline always has contrast. Both leave head-room for the additive noise (max 230 + 24 < 256).
    fg = rng.integers(115, 231, (n, 3, 1, 1), dtype=np.uint8)
    bg = rng.integers(0, 90, (n, 3, 1, 1), dtype=np.uint8)
    noise = rng.integers(0, _NOISE_LEVELS, (n, 3, SIZE, SIZE), dtype=np.uint8)

    grid = np.arange(SIZE, dtype=f32) + f32(0.5)  # pixel centres
    dx = grid.reshape(1, 1, SIZE) - cx.reshape(n, 1, 1)  # (n, 1, S)
    dy = grid.reshape(1, SIZE, 1) - cy.reshape(n, 1, 1)  # (n, S, 1)
    cos, sin = np.cos(tilt).reshape(n, 1, 1), np.sin(tilt).reshape(n, 1, 1)
    u = cos * dx + sin * dy  # (n, S, S): coordinates rotated into the shape's own frame
    v = cos * dy - sin * dx

    inside = np.zeros((n, SIZE, SIZE), dtype=bool)
    r = radius.reshape(n, 1, 1)
    for label, name in enumerate(SHAPE_CLASSES):
        idx = np.flatnonzero(labels == label)
        inside[idx] = _mask(name, u[idx], v[idx], r[idx])

    # uint8 arithmetic without overflow: fg > bg, and fg + noise < 256.
    images = bg + (fg - bg) * inside[:, None].view(np.uint8)  # (n, 3, S, S)
    images += noise
    return torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))


@register_dataset("shapes", description="Generated coloured shapes, 32x32 RGB (6 classes, offline, instant)",
                  classes=SHAPE_CLASSES, channels=3, image_size=SIZE, generated=True)
def build_shapes(cfg, *, seed: int):
    from core.data.splits import ImageSplits, split_train_val

    x, y = generate_shapes(cfg.num_samples, seed)
    train_x, train_y, val_x, val_y = split_train_val(x, y, cfg.val_fraction, seed)
    return ImageSplits(train_x, train_y, val_x, val_y, classes=list(SHAPE_CLASSES), channels=3, image_size=SIZE,
                       source=f"generated shapes ({cfg.num_samples:,} images, seed {seed})")

