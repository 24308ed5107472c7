"""A layer-by-layer summary of a model: output shape and parameter count of each top-level block."""

from __future__ import annotations

import pandas as pd
import torch


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
