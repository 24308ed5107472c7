"""Moving shapes: generated clips whose class can only be told from motion, never from one frame.

Eight classes: a shape moves left, right, up or down, turns clockwise or anticlockwise, or grows or
shrinks. Every frame of every class is drawn from the same distribution, so a model that sees one
frame is stuck at chance (1/8) and the gap to the temporal models is the point of the data set:

- position wraps around the image (a torus): a start drawn uniformly stays uniform in every frame,
  whichever way the shape moves;
- the angle starts uniform in [0, 2*pi), and the radius wraps around [R_MIN, R_MAX] like a sawtooth,
  so angle and size are uniform in every frame whether they grow, shrink or stay;
- shape kind, colours and noise are drawn the same way for every class, and the shapes (pacman,
  arrowhead, L) have no rotational symmetry, so a quarter turn is always visible.

Everything random comes from one seeded numpy generator (same seed and options: same bytes), drawn
for all frames of many clips at once with array masks over a shared pixel grid, and cached as uint8
tensors (N, T, C, H, W) under LAB_HOME/cache.
"""

from __future__ import annotations

import numpy as np

from core.data import register_dataset
from core.options import Option

CLASSES = ("left", "right", "up", "down", "clockwise", "anticlockwise", "growing", "shrinking")
KINDS = ("pacman", "arrow", "ell")
# Sizes and speeds as fractions of the image side (pixels at 32 px). Slow enough that a clip of 8
# frames rarely wraps around the radius range (about 1 in 4 growing or shrinking clips jumps once)
# and never moves more than half the image (so the first and last frames alone can tell the way).
_R_MIN, _R_MAX = 0.12, 0.40  # radius wraps around in this range (3.8-12.8 px)
_SPEED = (0.03, 0.055)  # translation per frame (1.0-1.8 px)
_TURN = (0.22, 0.40)  # radians per frame (13-23 degrees)
_GROW = (0.008, 0.0125)  # radius change per frame (0.26-0.4 px)
_NOISE_LEVELS = 25  # per-frame uniform noise of 0..24 grey levels
_CHUNK = 128  # clips drawn at once: bounds the float work arrays to ~100 MB at 16 frames of 64 px

OPTIONS = {
    "frames": Option(8, "Frames per clip (T)", low=2, high=32, label="Frames per clip"),
    "size": Option(32, "Frame width and height in pixels", low=16, high=128, label="Frame size"),
    "num_samples": Option(2000, "Clips to generate (balanced over the 8 classes)", low=16, high=100_000,
                          label="Clips"),
}


def _inside(kind: str, u, v, r):
    """Inside-the-shape mask. u, v: (n, T, S, S) coordinates in the shape's frame (u points the way
    the shape faces), r: (n, T, 1, 1) radius."""
    if kind == "pacman":  # a disc with a mouth facing +u
        return (u * u + v * v <= r * r) & ~((u > 0) & (np.abs(v) < 0.7 * u))
    if kind == "arrow":  # a narrow arrowhead, apex at +u
        return (u <= r) & (u >= -0.7 * r) & (np.abs(v) <= 0.55 * (r - u) / 1.7)
    if kind == "ell":  # an L: one bar along v, one along u
        bar_v = (u >= -0.8 * r) & (u <= -0.3 * r) & (np.abs(v) <= 0.8 * r)
        bar_u = (np.abs(u) <= 0.8 * r) & (v >= 0.3 * r) & (v <= 0.8 * r)
        return bar_v | bar_u
    raise AssertionError(kind)


def _motion(labels, frames: int, size: int, rng):
    """Per clip and frame: centre x, y, angle and radius, each (n, T) float32."""
    n, f32 = len(labels), np.float32
    t = np.arange(frames, dtype=f32)[None, :]  # (1, T)
    x0, y0 = rng.random(n, dtype=f32) * size, rng.random(n, dtype=f32) * size
    angle0 = rng.random(n, dtype=f32) * f32(2 * np.pi)
    r_low, r_span = _R_MIN * size, (_R_MAX - _R_MIN) * size
    s0 = rng.random(n, dtype=f32) * r_span  # radius above r_low, before wrapping
    speed = rng.uniform(*_SPEED, n).astype(f32) * size
    turn = rng.uniform(*_TURN, n).astype(f32)
    grow = rng.uniform(*_GROW, n).astype(f32) * size

    name = np.asarray(CLASSES)[labels]  # (n,)
    dx = np.select([name == "left", name == "right"], [-speed, speed], 0).astype(f32)
    dy = np.select([name == "up", name == "down"], [-speed, speed], 0).astype(f32)  # image y points down
    # clockwise on screen: with y pointing down, the angle measured from +x towards +y increases
    da = np.select([name == "clockwise", name == "anticlockwise"], [turn, -turn], 0).astype(f32)
    dr = np.select([name == "growing", name == "shrinking"], [grow, -grow], 0).astype(f32)

    cx = (x0[:, None] + dx[:, None] * t) % size  # (n, T): wraps around the torus
    cy = (y0[:, None] + dy[:, None] * t) % size
    angle = angle0[:, None] + da[:, None] * t
    radius = r_low + (s0[:, None] + dr[:, None] * t) % r_span  # sawtooth: uniform in every frame
    return cx, cy, angle, radius


def generate_moving_shapes(num_samples: int, frames: int, size: int, seed: int):
    """(num_samples, T, 3, S, S) uint8 clips and (num_samples,) int64 labels, balanced over classes."""
    import torch  # here, not at the top: registering the data set must not import torch

    rng = np.random.default_rng([int(seed), int(frames), int(size)])
    n, k, f32 = int(num_samples), len(CLASSES), np.float32
    labels = rng.permutation(np.arange(n) % k)  # (n,)
    kinds = rng.integers(0, len(KINDS), n)  # the same kind distribution for every class
    cx, cy, angle, radius = _motion(labels, frames, size, rng)
    # Shape brighter than the background in every channel (outline always visible); colour carries
    # no class signal. Head-room for the noise: 230 + 24 < 256.
    fg = rng.integers(115, 231, (n, 1, 3, 1, 1), dtype=np.uint8)
    bg = rng.integers(0, 90, (n, 1, 3, 1, 1), dtype=np.uint8)

    clips = np.empty((n, frames, 3, size, size), dtype=np.uint8)
    grid = np.arange(size, dtype=f32) + f32(0.5)  # pixel centres
    half = f32(size / 2)
    for lo in range(0, n, _CHUNK):
        hi = min(n, lo + _CHUNK)
        # signed distance to the centre the short way round the torus: (m, T, 1, S) and (m, T, S, 1)
        dx = (grid[None, None, None, :] - cx[lo:hi, :, None, None] + half) % size - half
        dy = (grid[None, None, :, None] - cy[lo:hi, :, None, None] + half) % size - half
        cos, sin = np.cos(angle[lo:hi, :, None, None]), np.sin(angle[lo:hi, :, None, None])
        u = cos * dx + sin * dy  # (m, T, S, S): rotated into the shape's own frame
        v = cos * dy - sin * dx
        r = radius[lo:hi, :, None, None]
        inside = np.zeros(u.shape, dtype=bool)
        for index, kind in enumerate(KINDS):
            idx = np.flatnonzero(kinds[lo:hi] == index)
            if len(idx):
                inside[idx] = _inside(kind, u[idx], v[idx], r[idx])
        noise = rng.integers(0, _NOISE_LEVELS, (hi - lo, frames, 3, size, size), dtype=np.uint8)
        # uint8 arithmetic without overflow: fg > bg, and fg + noise < 256
        chunk = bg[lo:hi] + (fg[lo:hi] - bg[lo:hi]) * inside[:, :, None].view(np.uint8)
        clips[lo:hi] = chunk + noise
    return torch.from_numpy(clips), torch.from_numpy(labels.astype(np.int64))


def resolved_options(cfg) -> dict:
    from core.options import resolve
    return resolve(cfg.options, OPTIONS)


def preview_moving_shapes(cfg, *, per_class: int, seed: int):
    """(class names, per_class fresh clips of each class in class order, their labels) with the run's options."""
    import torch
    opts = resolved_options(cfg)
    x, y = generate_moving_shapes(len(CLASSES) * per_class, opts["frames"], opts["size"], seed)
    order = torch.argsort(y, stable=True)
    return list(CLASSES), x[order], y[order]


@register_dataset("moving-shapes", description="Generated clips of shapes that move, turn, grow or shrink: "
                  "8 classes told apart only over time (offline, seconds)", classes=CLASSES, channels=3,
                  image_size=32, kind="video", options=OPTIONS, generated=True, preview=preview_moving_shapes)
def build_moving_shapes(cfg, *, seed: int):
    from core.data.cache import cached_tensors
    from core.data.splits import split_train_val
    from core.data.clips import VideoSplits

    opts = resolved_options(cfg)
    n, frames, size = int(opts["num_samples"]), int(opts["frames"]), int(opts["size"])

    def build():
        x, y = generate_moving_shapes(n, frames, size, seed)
        return {"x": x, "y": y}

    data = cached_tensors(f"moving-shapes:v2:{n}:{frames}:{size}:{seed}", build)
    train_x, train_y, val_x, val_y = split_train_val(data["x"], data["y"], cfg.val_fraction, seed)
    return VideoSplits(train_x, train_y, val_x, val_y, classes=list(CLASSES),
                       source=f"generated moving shapes ({n:,} clips of {frames} frames, {size}px, seed {seed})")
