"""Model zoo: a registry of plain-string names (like torchvision's get_model / list_models).

Every builder takes keyword-only arguments: num_classes, in_channels, image_size, plus the
fields of ModelConfig it cares about. `build(name, **kw)` returns an nn.Module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    task: str = "classification"  # the task whose setup builds it (core.tasks)
    options: dict = field(default_factory=dict)  # name -> core.options.Option (ModelConfig.options)


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(name: str, *, description: str, family: str, min_image_size: int = 1,
                   pretrained_available: bool = False, task: str = "classification", options=None):
    """Decorator. Classification builders take num_classes, in_channels, image_size; other tasks'
    builders take whatever their task's setup passes (keyword-only), documented on the builder."""
    def wrap(builder):
        _REGISTRY[name] = ModelSpec(name, description, family, min_image_size, pretrained_available, builder,
                                    task, dict(options or {}))
        return builder
    return wrap


_LOADED = False


def _ensure_loaded() -> None:
    # A flag, not `if not _REGISTRY`: importing one family first (say core.models.resnet_small)
    # must not hide the others. Import order is listing order: small models first.
    global _LOADED
    if not _LOADED:
        from core.models import small, resnet_small, imagenet  # noqa: F401  (registers)
        from core.data import _import_family_modules
        _import_family_modules("core.models", FAMILY_MODULES)
        _LOADED = True


# Models of the other task families; each module registers its own on import.
FAMILY_MODULES = ("char_lm", "gan", "autoencoder", "video", "captioning", "policy")


def list_models(task: str | None = "classification") -> list[str]:
    """Registered names for one task (image classifiers by default; None for all)."""
    _ensure_loaded()
    return [n for n, spec in _REGISTRY.items() if task is None or spec.task == task]


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
