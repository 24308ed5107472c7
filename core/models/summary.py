"""What a model looks like before it trains: its parameter count and a layer-by-layer summary (output shape
and parameters of each top-level block)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch


@dataclass
class ModelCard:
    description: str
    params: int
    trainable_params: int
    layers: pd.DataFrame  # layer, type, output shape, parameters


def model_card(name: str, *, num_classes: int, in_channels: int, image_size: int, **options) -> ModelCard:
    """Build the registered image model `name` as a run would and describe it (the Train form's model box)."""
    from core.models import build, model_info, parameter_count
    model = build(name, num_classes=num_classes, in_channels=in_channels, image_size=image_size, **options)
    return ModelCard(model_info(name).description, parameter_count(model),
                     parameter_count(model, trainable_only=True),
                     layer_summary(model, (in_channels, image_size, image_size)))


def layer_summary(model: torch.nn.Module, input_shape: tuple[int, ...]) -> pd.DataFrame:
    """Run one dummy batch (1, *input_shape) through the model and record each leaf-ish module's output."""
    rows: list[dict] = []
    hooks = []
    blocks = _blocks(model)
    for name, module in blocks:
        def record(mod, _inputs, output, name=name):
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else "?"
            rows.append({"layer": name, "type": type(mod).__name__,
                         "output shape": "×".join(str(s) for s in shape[1:]) if shape != "?" else "?",
                         "parameters": sum(p.numel() for p in mod.parameters())})
        hooks.append(module.register_forward_hook(record))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return pd.DataFrame(rows, columns=["layer", "type", "output shape", "parameters"])


def _blocks(model: torch.nn.Module, max_rows: int = 40) -> list[tuple[str, torch.nn.Module]]:
    """Top-level children, expanded one level when there are only a few (e.g. a wrapper or Sequential)."""
    blocks = list(model.named_children())
    while len(blocks) < 4 and any(list(m.children()) for _, m in blocks):
        expanded = []
        for name, module in blocks:
            children = list(module.named_children())
            expanded.extend((f"{name}.{child}", sub) for child, sub in children) if children else \
                expanded.append((name, module))
        blocks = expanded
    return blocks[:max_rows]
