"""Residual networks for small (e.g. 32x32) images, after He et al. 2016 (arXiv:1512.03385).

Unlike torchvision's ImageNet ResNets, the stem is a single 3x3 convolution with no max-pool, so a
32x32 image keeps its resolution into the first stage.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from core.models import register_model


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus an identity or 1x1-projection shortcut, ReLU after the sum."""

    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class SmallResNet(nn.Module):
    def __init__(self, blocks_per_stage: list[int], widths: list[int], num_classes: int, in_channels: int):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU())
        stages, in_planes = [], widths[0]
        for index, (count, planes) in enumerate(zip(blocks_per_stage, widths)):
            stride = 1 if index == 0 else 2  # each later stage halves the resolution
            for block in range(count):
                stages.append(BasicBlock(in_planes, planes, stride if block == 0 else 1))
                in_planes = planes
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(in_planes, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))  # (B, C_last, H/2^(stages-1), W/2^(stages-1))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


@register_model("resnet18_small", description="ResNet-18 for small images: 3x3 stem, 4 stages of 2 basic blocks "
                "(64-512 channels), 11M parameters", family="small", task="classification", min_image_size=8)
def resnet18_small(*, num_classes: int, in_channels: int, image_size: int, **_):
    return SmallResNet([2, 2, 2, 2], [64, 128, 256, 512], num_classes, in_channels)


@register_model("resnet20", description="ResNet-20 for CIFAR (He et al. 2016, section 4.2): 3 stages of 3 basic "
                "blocks (16-64 channels), 0.27M parameters", family="small", task="classification", min_image_size=8)
def resnet20(*, num_classes: int, in_channels: int, image_size: int, **_):
    return SmallResNet([3, 3, 3], [16, 32, 64], num_classes, in_channels)
