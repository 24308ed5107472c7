"""Batches straight from device memory: the whole split lives on the device as uint8, batches are
gathered, augmented and normalised there in bulk, with no worker processes and no per-sample Python.

Reproducibility is by construction, not by carrying RNG state around:
  - an epoch's order is a permutation from a CPU generator seeded with (seed, epoch);
  - a batch's crop offsets and flips come from a CPU generator seeded with (seed, epoch, batch).
So `epoch(e, start_batch=k)` yields exactly batches k.. of `epoch(e)`, bit for bit, which is what
resuming a run from a mid-epoch checkpoint needs.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import torch
import torch.nn.functional as F

from core.world import shard_bounds

_MASK64 = (1 << 64) - 1


def derive_seed(*parts: int) -> int:
    """Mix integers into one 63-bit seed (splitmix64 steps), so nearby inputs give unrelated streams."""
    h = 0x9E3779B97F4A7C15
    for part in parts:
        h = (h ^ (int(part) & _MASK64)) & _MASK64
        h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & _MASK64
        h ^= h >> 31
    return h >> 1


def normaliser(mean: Sequence[float], std: Sequence[float], channels: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift), each (1, C, 1, 1) on `device`, with (x / 255 - mean) / std == x * scale + shift: one fused
    addcmul per batch reads uint8 images directly. Every image batch source normalises this way."""
    mean_t = torch.as_tensor(mean, dtype=torch.float32).flatten()
    std_t = torch.as_tensor(std, dtype=torch.float32).flatten()
    if mean_t.numel() not in (1, channels) or std_t.numel() not in (1, channels):
        raise ValueError(f"mean and std need 1 or {channels} values, got {mean_t.numel()} and {std_t.numel()}")
    if bool((std_t <= 0).any()):
        raise ValueError("std must be positive")
    scale = (1.0 / (255.0 * std_t)).expand(channels).reshape(1, channels, 1, 1).to(device)
    shift = (-mean_t / std_t).expand(channels).reshape(1, channels, 1, 1).to(device)
    return scale, shift


class DeviceBatches:
    """One split (uint8 images (N, C, H, W), int64 labels (N,)) held on `device`, served as batches.

    Each batch is (images float32 (B, C, H, W) = (x / 255 - mean) / std, labels int64 (B,)).
    Crop pads with zeros (black, before normalisation, as torchvision's RandomCrop(padding=p) on
    images does) and takes a random H x W window per sample; flip mirrors a random half along W.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, *, batch_size: int, device, mean: Sequence[float],
                 std: Sequence[float], shuffle: bool = True, drop_last: bool = False, augment_crop: bool = False,
                 crop_padding: int = 4, augment_flip: bool = False, seed: int = 0, shard: tuple[int, int] = (0, 1)):
        if x.dtype != torch.uint8 or x.dim() != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {x.dtype} {tuple(x.shape)}")
        if y.dim() != 1 or len(y) != len(x):
            raise ValueError(f"labels must be (N,) with N = {len(x)}, got {tuple(y.shape)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.device = torch.device(device)
        self._scale, self._shift = normaliser(mean, std, x.shape[1], self.device)
        self.x = x.to(self.device)  # (N, C, H, W) uint8, moved once
        self.y = y.to(self.device, torch.int64)  # (N,)
        self.batch_size = int(batch_size)
        self.shuffle, self.drop_last, self.seed = bool(shuffle), bool(drop_last), int(seed)
        self.padding = int(crop_padding) if augment_crop else 0
        self.flip = bool(augment_flip)
        self.augment = bool(augment_crop) or self.flip
        self.shard = shard  # (rank, ranks): this process takes its part of every global batch (core.world)
        height, width = x.shape[2], x.shape[3]
        self._rows = torch.arange(height, device=self.device)  # (H,) window offsets, reused every batch
        self._cols = torch.arange(width, device=self.device)  # (W,)

    @property
    def num_samples(self) -> int:
        return len(self.y)

    def __len__(self) -> int:
        n, b = len(self.y), self.batch_size
        return n // b if self.drop_last else (n + b - 1) // b

    def order(self, epoch: int) -> torch.Tensor | None:
        """The epoch's sample order (N,) on the device, or None for the natural order."""
        if not self.shuffle:
            return None
        g = torch.Generator().manual_seed(derive_seed(self.seed, epoch))
        return torch.randperm(len(self.y), generator=g).to(self.device)

    def epoch(self, epoch: int, start_batch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield (images (B, C, H, W) float32, labels (B,) int64) for batches start_batch.. of `epoch`."""
        if start_batch < 0:
            raise ValueError(f"start_batch must be >= 0, got {start_batch}")
        n, b, count = len(self.y), self.batch_size, len(self)
        if start_batch >= count:
            return
        order = self.order(epoch)
        params = self._augment_params(epoch, start_batch, count) if self.augment else None
        offset = start_batch * b  # where `params` begins, in samples
        for i in range(start_batch, count):
            lo, hi = shard_bounds(i * b, min((i + 1) * b, n), self.shard)
            if order is None:
                xb, yb = self.x[lo:hi], self.y[lo:hi]  # views: no copy until normalisation
            else:
                idx = order[lo:hi]
                xb, yb = self.x.index_select(0, idx), self.y.index_select(0, idx)
            if params is not None:
                xb = self._crop_flip(xb, params[:, lo - offset:hi - offset])
            yield torch.addcmul(self._shift, xb, self._scale), yb

    # ---- augmentation ----------------------------------------------------------------------------

    def _augment_params(self, epoch: int, start_batch: int, count: int) -> torch.Tensor:
        """(3, samples) int64 on the device: row offset, column offset, flip (0/1) per sample.

        Drawn batch by batch from generators seeded with (seed, epoch, batch), then moved to the
        device in one copy, so the loop itself never waits on the host.
        """
        n, b = len(self.y), self.batch_size
        span = 2 * self.padding + 1  # window offsets 0..2p in the padded image
        g = torch.Generator()
        chunks = []
        for i in range(start_batch, count):
            size = min((i + 1) * b, n) - i * b
            g.manual_seed(derive_seed(self.seed, epoch, i))
            u = torch.rand(3, size, generator=g)  # (3, B): row, column, flip
            draws = torch.empty(3, size, dtype=torch.int64)
            draws[:2] = (u[:2] * span).long().clamp_(max=span - 1)
            draws[2] = (u[2] < 0.5).long() if self.flip else 0
            chunks.append(draws)
        return torch.cat(chunks, dim=1).to(self.device)

    def _crop_flip(self, xb: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """xb (B, C, H, W) uint8 -> same shape: each sample a (possibly mirrored) window of its padded self.

        One gather over flattened pixels: out[b, c, i, j] = padded[b, c, oy[b] + i, ox[b] + j'] with
        j' = j, or W - 1 - j for mirrored samples.
        """
        bsz, channels, height, width = xb.shape
        p = self.padding
        src = F.pad(xb, (p, p, p, p)) if p else xb  # (B, C, H + 2p, W + 2p), zeros around
        padded_width = width + 2 * p
        oy, ox, mirrored = params[0], params[1], params[2].bool()
        rows = oy[:, None] + self._rows  # (B, H)
        cols = ox[:, None] + self._cols  # (B, W)
        if self.flip:
            cols = torch.where(mirrored[:, None], cols.flip(1), cols)  # read the window right to left
        flat = (rows[:, :, None] * padded_width + cols[:, None, :]).view(bsz, 1, height * width)  # (B, 1, H*W)
        out = src.reshape(bsz, channels, -1).gather(2, flat.expand(bsz, channels, height * width))
        return out.view(bsz, channels, height, width)


def steps_per_epoch(train_size: int, batch_size: int) -> int:
    """Batches in one training epoch as the image tasks serve them: full batches only (the last partial
    one is dropped) unless the whole set fits in one batch."""
    return max(1, train_size // batch_size)
