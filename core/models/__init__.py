"""Model zoo: a registry of plain-string names (like torchvision's get_model / list_models).

Every builder takes keyword-only arguments: num_classes, in_channels, image_size, plus the
fields of ModelConfig it cares about. `build(name, **kw)` returns an nn.Module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from core.registry import Registry


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    family: str  # "small" (trained from scratch on small images) or "imagenet" (torchvision)
    min_image_size: int
    pretrained_available: bool
    builder: Callable
    task: str  # the task whose setup builds it (core.tasks)
    options: dict = field(default_factory=dict)  # name -> core.options.Option (ModelConfig.options)


# Import order is listing order: small image models first, then torchvision's, then the other families'.
MODELS: Registry[ModelSpec] = Registry("model.name", tuple(f"core.models.{name}" for name in (
    "small", "resnet_small", "speedrun", "imagenet", "char_lm", "gan", "autoencoder", "video", "captioning", "policy", "seq2seq",
    "seq2seq_transformer", "text_classifiers")))


def register_model(name: str, *, description: str, family: str, task: str, min_image_size: int = 1,
                   pretrained_available: bool = False, options=None):
    """Decorator. `task` names the family whose setup builds the model (core.tasks); image classifiers'
    builders take num_classes, in_channels, image_size, other tasks' builders whatever their task's setup
    passes (keyword-only), documented on the builder."""
    def wrap(builder):
        MODELS.add(name, ModelSpec(name, description, family, min_image_size, pretrained_available, builder,
                                   task, dict(options or {})))
        return builder
    return wrap


def list_models(task: str | None = None) -> list[str]:
    """Registered names for one task (None: every model)."""
    return MODELS.names(lambda spec: task is None or spec.task == task)


def model_info(name: str) -> ModelSpec:
    return MODELS.get(name)


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
