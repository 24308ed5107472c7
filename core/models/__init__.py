"""Model zoo: a registry of plain-string names (like torchvision's get_model / list_models).

Every builder takes keyword-only arguments: num_classes, in_channels, image_size, plus the
fields of ModelConfig it cares about. `build(name, **kw)` returns an nn.Module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from core.errors import ConfigError


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    family: str  # "small" (trained from scratch on small images) or "imagenet" (torchvision)
    min_image_size: int
    pretrained_available: bool
    builder: Callable


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(name: str, *, description: str, family: str, min_image_size: int,
                   pretrained_available: bool = False):
    def wrap(builder):
        _REGISTRY[name] = ModelSpec(name, description, family, min_image_size, pretrained_available, builder)
        return builder
    return wrap


_LOADED = False


def _ensure_loaded() -> None:
    # A flag, not `if not _REGISTRY`: importing one family first (say core.models.resnet_small)
    # must not hide the others. Import order is listing order: small models first.
    global _LOADED
    if not _LOADED:
        from core.models import small, resnet_small, imagenet  # noqa: F401  (registers)
        _LOADED = True


def list_models() -> list[str]:
    _ensure_loaded()
    return list(_REGISTRY)


def model_info(name: str) -> ModelSpec:
    _ensure_loaded()
    if name not in _REGISTRY:
        raise ConfigError(f"model.name: '{name}' is not one of: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def build(name: str, *, num_classes: int, in_channels: int, image_size: int, **options):
    """Build a registered model for `num_classes` outputs on (in_channels, image_size, image_size) input."""
    return model_info(name).builder(num_classes=num_classes, in_channels=in_channels,
                                    image_size=image_size, **options)


def parameter_count(model, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def build_from_config(model_cfg, *, num_classes: int, in_channels: int, image_size: int):
    return build(model_cfg.name, num_classes=num_classes, in_channels=in_channels, image_size=image_size,
                 pretrained=model_cfg.pretrained, freeze_backbone=model_cfg.freeze_backbone,
                 hidden=model_cfg.hidden, dropout=model_cfg.dropout)
