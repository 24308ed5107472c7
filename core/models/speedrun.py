"""The network of the CIFAR-10 speedruns: a whitened 2x2 patch layer, then three conv-pool-norm groups.

The architecture follows Jordan (2024), "94% on CIFAR-10 in 3.29 seconds on a single GPU"
(arXiv:2404.00498, the airbench94 network), which builds on Page (2018), "How to train your ResNet":
- the first layer is a 2x2 convolution whose filters are fixed to the eigenvectors of the training
  images' 2x2-patch covariance, divided by the square root of their eigenvalues (each used with both
  signs, so GELU keeps the information): the input arrives decorrelated ("whitened"), which lets the
  rest train at a high learning rate from the first step. Only its bias trains, and only for the
  first few epochs (core.tasks.classification.speedrun freezes it);
- BatchNorm scales stay at 1 and only the shifts train;
- each convolution starts as an identity on its first input channels (a Dirac kernel), so the
  untrained network passes the whitened image through;
- the logits are scaled by 1/9, which acts as a temperature that suits label smoothing 0.2.
"""

from __future__ import annotations

import torch
from torch import nn

from core.models import register_model

WIDTHS = (64, 256, 256)  # channels of the three groups (airbench94)
PATCH = 2  # the whitening layer's kernel size
LOGIT_SCALE = 1 / 9
BN_MOMENTUM = 0.4  # torch's convention (weight of the new batch); the paper's 0.6 is the old statistics' weight
WHITEN_EPS = 5e-4  # added to the eigenvalues: keeps the near-null directions from blowing up
WHITEN_BIAS_EPOCHS = 3  # the whitening layer's bias trains in these first epochs, then stays


class _Conv(nn.Conv2d):
    """3x3 'same' convolution without bias, initialised as an identity on its first input channels."""

    def __init__(self, channels_in: int, channels_out: int):
        super().__init__(channels_in, channels_out, kernel_size=3, padding="same", bias=False)
        with torch.no_grad():
            nn.init.dirac_(self.weight[:min(channels_in, channels_out)])


def _norm(channels: int) -> nn.BatchNorm2d:
    norm = nn.BatchNorm2d(channels, eps=1e-12, momentum=BN_MOMENTUM)
    norm.weight.requires_grad_(False)  # scale fixed at 1: only the shift trains
    return norm


class _ConvGroup(nn.Module):
    """conv3x3 → max-pool 2 → BN → GELU → conv3x3 → BN → GELU: halves the resolution."""

    def __init__(self, channels_in: int, channels_out: int):
        super().__init__()
        self.conv1, self.norm1 = _Conv(channels_in, channels_out), _norm(channels_out)
        self.conv2, self.norm2 = _Conv(channels_out, channels_out), _norm(channels_out)
        self.pool, self.act = nn.MaxPool2d(2), nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.norm1(self.pool(self.conv1(x))))
        return self.act(self.norm2(self.conv2(x)))


class SpeedrunNet(nn.Module):
    def __init__(self, num_classes: int, in_channels: int, widths=WIDTHS):
        super().__init__()
        patch_dims = in_channels * PATCH * PATCH
        self.whiten = nn.Conv2d(in_channels, 2 * patch_dims, PATCH, padding=0, bias=True)
        self.whiten.weight.requires_grad_(False)  # set from the data by fit_to_data, never trained
        with torch.no_grad():
            self.whiten.bias.zero_()
        channels = [2 * patch_dims, *widths]
        self.groups = nn.Sequential(*(_ConvGroup(a, b) for a, b in zip(channels, channels[1:])))
        self.act = nn.GELU()
        self.pool = nn.AdaptiveMaxPool2d(1)  # 32px input: a 3x3 map after the groups; max over it
        self.head = nn.Linear(widths[-1], num_classes, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) normalised images
        x = self.groups(self.act(self.whiten(x)))  # (B, 256, H/8, W/8)
        return self.head(torch.flatten(self.pool(x), 1)) * LOGIT_SCALE  # (B, K)

    def set_epoch(self, epoch: int) -> None:
        """Called before each epoch trains (core.tasks.classification.speedrun.EpochAnnouncer)."""
        self.whiten.bias.requires_grad_(epoch < WHITEN_BIAS_EPOCHS)

    @torch.no_grad()
    def fit_to_data(self, images: torch.Tensor) -> None:
        """Set the whitening filters from normalised training images (N, C, H, W): the eigenvectors of the
        covariance of every PATCH x PATCH patch, scaled by 1/sqrt(eigenvalue + eps), with both signs."""
        weight = self.whiten.weight  # (2 * C*P*P, C, P, P)
        c = images.shape[1]
        patches = images.float().unfold(2, PATCH, 1).unfold(3, PATCH, 1)  # (N, C, H', W', P, P)
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, c * PATCH * PATCH)  # (N*H'*W', C*P*P)
        covariance = patches.T @ patches / len(patches)  # (D, D), D = C*P*P
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance.double())  # ascending
        eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.flip(1)  # largest variance first
        filters = (eigenvectors / torch.sqrt(eigenvalues.clamp(min=0) + WHITEN_EPS)).T  # (D, D): row k = filter k
        filters = filters.reshape(-1, c, PATCH, PATCH).to(weight.dtype)
        weight.copy_(torch.cat([filters, -filters]).to(weight.device))


@register_model("speedrun_net", description="The CIFAR-10 speedrun network (Jordan 2024, airbench94): a whitened "
                "2x2 patch layer, then three conv-pool-BN-GELU groups of 64-256-256 channels; 2M parameters",
                family="small", task="classification", min_image_size=16)
def speedrun_net(*, num_classes: int, in_channels: int, image_size: int, **_):
    return SpeedrunNet(num_classes, in_channels)
