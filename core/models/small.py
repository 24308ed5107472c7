"""Small models trained from scratch: a multilayer perceptron and the classic conv-pool CNN."""

from __future__ import annotations

from torch import nn

from core.models import register_model


@register_model("mlp", description="Multilayer perceptron: flatten, two hidden ReLU layers, linear head",
                family="small", task="classification", min_image_size=4)
def mlp(*, num_classes: int, in_channels: int, image_size: int, hidden: int = 256, dropout: float = 0.0, **_):
    return nn.Sequential(
        nn.Flatten(),  # (B, C*H*W)
        nn.Linear(in_channels * image_size * image_size, hidden), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(hidden, num_classes),
    )


@register_model("cnn", description="Classic CNN: conv5x5-ReLU-pool, conv5x5-ReLU-pool, fully connected, linear head "
                "(the TensorFlow 'Deep MNIST' / CIFAR-10 tutorial layout)",
                family="small", task="classification", min_image_size=8)
def cnn(*, num_classes: int, in_channels: int, image_size: int, hidden: int = 1024, dropout: float = 0.0, **_):
    side = image_size // 4  # two 2x2 poolings
    return nn.Sequential(
        nn.Conv2d(in_channels, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),  # (B, 32, S/2, S/2)
        nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),  # (B, 64, S/4, S/4)
        nn.Flatten(),
        nn.Linear(64 * side * side, hidden), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(hidden, num_classes),
    )
