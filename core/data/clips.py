"""Video data in memory: what every video data set returns (VideoSplits) and how it is served (ClipBatches).

Clips are uint8 tensors (N, T, C, H, W) decoded once; core.data.moving_shapes and core.data.video_folder
build them, core.tasks.video trains on them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.data.loader import DeviceBatches
from core.data.splits import channel_mean_std


@dataclass
class VideoSplits:
    train_x: torch.Tensor  # (N, T, C, S, S) uint8
    train_y: torch.Tensor  # (N,) int64 indices into `classes`
    val_x: torch.Tensor  # (M, T, C, S, S) uint8
    val_y: torch.Tensor  # (M,)
    classes: list[str]
    skipped: int = 0  # clips that could not be decoded
    source: str = ""
    frame_interval_s: float | None = None  # seconds between sampled frames (median); None: generated data

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def frames(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def channels(self) -> int:
        return int(self.train_x.shape[2])

    @property
    def image_size(self) -> int:
        return int(self.train_x.shape[-1])

    def mean_std(self) -> tuple[list[float], list[float]]:
        """Per-channel mean and std of the training frames in [0, 1]."""
        mean, std = channel_mean_std(self.train_x.flatten(0, 1))  # (N*T, C, S, S)
        return list(mean), list(std)


class ClipBatches:
    """Clips (N, T, C, H, W) uint8 on the device, served as (clips float32 (B, T, C, H, W), labels (B,)).

    The frames of a clip are laid side by side on the channel axis, (N, T*C, H, W), and handed to
    DeviceBatches: the same seeded order per epoch (so resumed runs replay it), and one crop offset
    and one flip per clip, shared by all its frames, so augmentation never tears the motion apart.
    """

    def __init__(self, x, y, *, batch_size: int, device, mean, std, shuffle: bool = True, drop_last: bool = False,
                 augment_crop: bool = False, crop_padding: int = 4, augment_flip: bool = False, seed: int = 0):
        if x.dtype.is_floating_point or x.dim() != 5:
            raise ValueError(f"clips must be uint8 (N, T, C, H, W), got {x.dtype} {tuple(x.shape)}")
        n, self.frames, self.channels, height, width = x.shape
        self.inner = DeviceBatches(x.reshape(n, self.frames * self.channels, height, width), y,
                                   batch_size=batch_size, device=device, mean=list(mean) * self.frames,
                                   std=list(std) * self.frames, shuffle=shuffle, drop_last=drop_last,
                                   augment_crop=augment_crop, crop_padding=crop_padding,
                                   augment_flip=augment_flip, seed=seed)

    @property
    def num_samples(self) -> int:
        return self.inner.num_samples

    def __len__(self) -> int:
        return len(self.inner)

    def epoch(self, epoch: int, start_batch: int = 0):
        for xb, yb in self.inner.epoch(epoch, start_batch):  # xb (B, T*C, H, W)
            yield xb.view(xb.shape[0], self.frames, self.channels, *xb.shape[2:]), yb
