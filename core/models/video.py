"""Video classifiers: where in the network time is fused (Karpathy et al., CVPR 2014), plus (2+1)-D
convolutions (Tran et al., 2017/2018) and a CNN feeding an LSTM (Donahue et al., 2015).

Every model takes clips (B, T, C, H, W), normalised, and returns logits (B, K). Builders are called by
core.tasks.video with num_classes, in_channels, frames, image_size, hidden and dropout (ModelConfig)
plus the model's own options. Sizes suit a CPU: a minute of training on 8 x 32 x 32 clips.

- single_frame: a 2-D CNN on the middle frame only: the baseline that cannot see motion.
- early_fusion: all T frames stacked on the channel axis of the first convolution, so its filters
  span time at the pixel level; later layers are ordinary 2-D.
- late_fusion: one shared 2-D CNN on the first and last frames; their feature maps meet only in the
  fully connected layers, which must infer motion from two snapshots.
- slow_fusion: 3-D convolutions whose temporal reach grows layer by layer (3, then 7, then all
  frames), mixing time gradually as the spatial receptive field grows.
- r2plus1d: residual blocks of (2+1)-D convolutions: a 1 x 3 x 3 spatial conv, a non-linearity, then a
  3 x 1 x 1 temporal conv, with the middle width chosen to match a full 3 x 3 x 3 conv's parameters.
- cnn_lstm: a 2-D CNN on every frame, its feature maps read in order by an LSTM shared by every position.
"""

from __future__ import annotations

import torch
from torch import nn

from core.models import register_model
from core.options import Option

WIDTH = Option(16, "Channels of the first convolution (later layers use twice as many)", low=4, high=256,
               label="Width")


def _tower(in_channels: int, width: int) -> nn.Sequential:
    """2-D conv tower: (B, C_in, H, W) -> (B, 2w, 4, 4); the 4 x 4 map keeps where things are, which
    the fusion models need to compare positions across frames."""
    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                nn.MaxPool2d(2)]
    return nn.Sequential(*block(in_channels, width), *block(width, 2 * width), *block(2 * width, 2 * width),
                         nn.AdaptiveAvgPool2d(4), nn.Flatten())  # (B, 2w * 16)


def _head(features: int, hidden: int, num_classes: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(features, hidden), nn.ReLU(inplace=True),
                         nn.Dropout(dropout), nn.Linear(hidden, num_classes))


class SingleFrame(nn.Module):
    def __init__(self, *, num_classes, in_channels, width, hidden, dropout):
        super().__init__()
        self.tower = _tower(in_channels, width)
        self.head = _head(2 * width * 16, hidden, num_classes, dropout)

    def forward(self, clips):  # (B, T, C, H, W)
        return self.head(self.tower(clips[:, clips.shape[1] // 2]))  # middle frame (B, C, H, W)


class EarlyFusion(nn.Module):
    def __init__(self, *, num_classes, in_channels, frames, width, hidden, dropout):
        super().__init__()
        self.tower = _tower(frames * in_channels, width)  # first conv sees every frame at once
        self.head = _head(2 * width * 16, hidden, num_classes, dropout)

    def forward(self, clips):  # (B, T, C, H, W)
        return self.head(self.tower(clips.flatten(1, 2)))  # (B, T*C, H, W)


class LateFusion(nn.Module):
    def __init__(self, *, num_classes, in_channels, width, hidden, dropout):
        super().__init__()
        self.tower = _tower(in_channels, width)  # shared by both frames
        self.head = _head(2 * 2 * width * 16, hidden, num_classes, dropout)

    def forward(self, clips):  # (B, T, C, H, W)
        first, last = self.tower(clips[:, 0]), self.tower(clips[:, -1])  # (B, F) each
        return self.head(torch.cat([first, last], dim=1))  # merged only in the fully connected layers


class SlowFusion(nn.Module):
    def __init__(self, *, num_classes, in_channels, width, hidden, dropout):
        super().__init__()
        def block(cin: int, cout: int) -> list[nn.Module]:
            # 3 frames at a time with temporal stride 2: each layer doubles how much of the clip a unit sees
            return [nn.Conv3d(cin, cout, 3, stride=(2, 1, 1), padding=1, bias=False), nn.BatchNorm3d(cout),
                    nn.ReLU(inplace=True), nn.MaxPool3d((1, 2, 2))]
        self.features = nn.Sequential(*block(in_channels, width), *block(width, 2 * width),
                                      *block(2 * width, 2 * width), nn.AdaptiveAvgPool3d((1, 4, 4)), nn.Flatten())
        self.head = _head(2 * width * 16, hidden, num_classes, dropout)

    def forward(self, clips):  # (B, T, C, H, W)
        return self.head(self.features(clips.transpose(1, 2)))  # Conv3d wants (B, C, T, H, W)


class SpatioTemporalConv(nn.Sequential):
    """(2+1)-D: 1 x 3 x 3 spatial conv -> BN -> ReLU -> 3 x 1 x 1 temporal conv. The middle width
    M = floor(t d^2 N_in N_out / (d^2 N_in + t N_out)) gives it the parameters of a t x d x d conv."""

    def __init__(self, cin: int, cout: int, stride: tuple[int, int] = (1, 1)):
        t, d = 3, 3
        mid = (t * d * d * cin * cout) // (d * d * cin + t * cout)
        temporal_stride, spatial_stride = stride
        super().__init__(nn.Conv3d(cin, mid, (1, d, d), stride=(1, spatial_stride, spatial_stride),
                                   padding=(0, 1, 1), bias=False),
                         nn.BatchNorm3d(mid), nn.ReLU(inplace=True),
                         nn.Conv3d(mid, cout, (t, 1, 1), stride=(temporal_stride, 1, 1), padding=(1, 0, 0),
                                   bias=False))


class R2Plus1dBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: tuple[int, int] = (1, 1)):
        super().__init__()
        self.conv1 = SpatioTemporalConv(cin, cout, stride)
        self.bn1 = nn.BatchNorm3d(cout)
        self.conv2 = SpatioTemporalConv(cout, cout)
        self.bn2 = nn.BatchNorm3d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = nn.Identity()
        if cin != cout or stride != (1, 1):
            self.shortcut = nn.Sequential(nn.Conv3d(cin, cout, 1, stride=(stride[0], stride[1], stride[1]),
                                                    bias=False), nn.BatchNorm3d(cout))

    def forward(self, x):  # (B, C, T, H, W)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class R2Plus1d(nn.Module):
    def __init__(self, *, num_classes, in_channels, width, dropout):
        super().__init__()
        # (B, C, T, H, W) -> stem (w, T, H/2, W/2) -> (w, T, H/4, W/4) -> (2w, T/2, H/8, W/8) -> (4w, T/4, H/8, W/8):
        # space shrinks early (small clips, small CPU), time late, so the first blocks still see every frame
        self.stem = nn.Sequential(SpatioTemporalConv(in_channels, width, stride=(1, 2)), nn.BatchNorm3d(width),
                                  nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(R2Plus1dBlock(width, width, stride=(1, 2)),
                                    R2Plus1dBlock(width, 2 * width, stride=(2, 2)),
                                    R2Plus1dBlock(2 * width, 4 * width, stride=(2, 1)))
        self.pool = nn.AdaptiveAvgPool3d(1)  # motion detectors are position-free: pool everything
        self.fc = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(4 * width, num_classes))

    def forward(self, clips):  # (B, T, C, H, W)
        return self.fc(self.pool(self.blocks(self.stem(clips.transpose(1, 2)))))


class CnnLstm(nn.Module):
    """A 2-D CNN on every frame, then an LSTM over time at every position of its feature map.

    The LSTM is shared by all positions (a convolutional LSTM with 1 x 1 kernels, Shi et al. 2015): a
    single LSTM reading the whole flattened map would have to learn motion anew at every position,
    which a CPU-sized data set cannot teach it. Each step reads the position's features and their
    change since the previous frame (delta features, as speech recognisers use): from scratch, an LSTM
    learns to compare consecutive inputs very slowly, and motion is exactly such a comparison. The CNN
    average-pools rather than max-pools, so its features still move when a shape moves by a pixel.
    """

    def __init__(self, *, num_classes, in_channels, width, dropout, lstm_hidden, lstm_layers):
        super().__init__()
        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                    nn.AvgPool2d(2)]
        self.cnn = nn.Sequential(*block(in_channels, width), *block(width, 2 * width), nn.AdaptiveAvgPool2d(8))
        self.lstm = nn.LSTM(2 * 2 * width, lstm_hidden, num_layers=lstm_layers, batch_first=True,
                            dropout=dropout if lstm_layers > 1 else 0.0)
        self.fc = nn.Sequential(nn.Dropout(dropout), nn.Linear(lstm_hidden, num_classes))

    def forward(self, clips):  # (B, T, C, H, W)
        b, t = clips.shape[:2]
        maps = self.cnn(clips.flatten(0, 1))  # (B*T, F, h, w): one CNN pass for every frame of every clip
        f, h, w = maps.shape[1:]
        seq = maps.view(b, t, f, h * w).permute(0, 3, 1, 2).reshape(b * h * w, t, f)  # a sequence per position
        delta = seq - torch.cat([seq[:, :1], seq[:, :-1]], dim=1)  # (B*h*w, T, F), zero at the first frame
        outputs, _ = self.lstm(torch.cat([seq, delta], dim=2))  # (B*h*w, T, lstm_hidden)
        final = outputs[:, -1].view(b, h * w, -1).mean(dim=1)  # after the last frame, averaged over positions
        return self.fc(final)


# ---- registry ---------------------------------------------------------------------------------
# Builders: keyword-only num_classes, in_channels, frames, image_size, hidden, dropout, **options.

@register_model("single_frame", description="2-D CNN on the middle frame only (no motion: the baseline)",
                family="video", task="video", options={"width": WIDTH})
def single_frame(*, num_classes, in_channels, frames, image_size, hidden=128, dropout=0.0, width=16):
    return SingleFrame(num_classes=num_classes, in_channels=in_channels, width=width, hidden=hidden, dropout=dropout)


@register_model("early_fusion", description="Frames stacked on the channel axis of the first convolution",
                family="video", task="video", options={"width": WIDTH})
def early_fusion(*, num_classes, in_channels, frames, image_size, hidden=128, dropout=0.0, width=16):
    return EarlyFusion(num_classes=num_classes, in_channels=in_channels, frames=frames, width=width, hidden=hidden,
                       dropout=dropout)


@register_model("late_fusion", description="Shared 2-D CNN on the first and last frames, merged in the FC layers",
                family="video", task="video", options={"width": WIDTH})
def late_fusion(*, num_classes, in_channels, frames, image_size, hidden=128, dropout=0.0, width=16):
    return LateFusion(num_classes=num_classes, in_channels=in_channels, width=width, hidden=hidden, dropout=dropout)


@register_model("slow_fusion", description="3-D convolutions whose temporal extent grows through the layers",
                family="video", task="video", options={"width": WIDTH})
def slow_fusion(*, num_classes, in_channels, frames, image_size, hidden=128, dropout=0.0, width=16):
    return SlowFusion(num_classes=num_classes, in_channels=in_channels, width=width, hidden=hidden, dropout=dropout)


@register_model("r2plus1d", description="Residual (2+1)-D blocks: spatial conv, then temporal conv (Tran et al.)",
                family="video", task="video", options={"width": WIDTH})
def r2plus1d(*, num_classes, in_channels, frames, image_size, hidden=128, dropout=0.0, width=16):
    return R2Plus1d(num_classes=num_classes, in_channels=in_channels, width=width, dropout=dropout)


@register_model("cnn_lstm", description="Per-frame 2-D CNN whose feature maps an LSTM reads in order, "
                "position by position",
                family="video", task="video",
                options={"width": WIDTH,
                         "lstm_hidden": Option(64, "Units in each LSTM layer", low=8, high=2048, label="LSTM units"),
                         "lstm_layers": Option(1, "Stacked LSTM layers", low=1, high=4, label="LSTM layers")})
def cnn_lstm(*, num_classes, in_channels, frames, image_size, hidden=128, dropout=0.0, width=16, lstm_hidden=64,
             lstm_layers=1):
    return CnnLstm(num_classes=num_classes, in_channels=in_channels, width=width, dropout=dropout,
                   lstm_hidden=lstm_hidden, lstm_layers=lstm_layers)
