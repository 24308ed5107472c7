"""Magnitude pruning with torch.nn.utils.prune, an optional short fine-tune that keeps the masks, and
the sparsity it leaves.

- unstructured: the smallest-magnitude weights of all convolution and linear layers together, one global
  L1 threshold (Han et al. 2015), so layers with many redundant weights lose more of them;
- channel: in every convolution, the output channels whose kernels have the smallest L2 norm, all
  weights of a channel at once (Li et al. 2017, "Pruning Filters for Efficient ConvNets"). The channels
  stay in place as zeros: the architecture, and so every loader, is unchanged.

While pruned, a layer computes weight = weight_orig * weight_mask before every forward pass, so a
fine-tune moves only the surviving weights; `make_permanent` then writes the zeros into `weight`.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn
from torch.nn.utils import prune

from core.errors import ModelError

KINDS = ("unstructured", "channel")
PRUNABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
CONVOLUTIONS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
FINETUNE_LR_SCALE = 0.1  # a fine-tune starts from trained weights: a tenth of the run's base rate


def prunable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in model.named_modules() if isinstance(m, PRUNABLE)]


def check_prunable(model: nn.Module, kind: str, model_name: str) -> None:
    """A ModelError when the model has nothing this kind of pruning can remove."""
    layers = prunable_layers(model)
    if not layers:
        raise ModelError(f"pruning works on convolution and linear layers, and model '{model_name}' has none")
    if kind == "channel" and not any(isinstance(m, CONVOLUTIONS) for _, m in layers):
        raise ModelError(f"channel pruning removes convolution output channels, and model '{model_name}' has no "
                         "convolutions; use unstructured pruning (--prune-kind unstructured)")


def apply_pruning(model: nn.Module, amount: float, kind: str) -> None:
    """Attach pruning masks (in place) removing `amount` (0-1) of the weights or channels."""
    layers = [m for _, m in prunable_layers(model)]
    if kind == "unstructured":
        prune.global_unstructured([(m, "weight") for m in layers], pruning_method=prune.L1Unstructured,
                                  amount=amount)
        return
    for module in layers:
        if isinstance(module, CONVOLUTIONS):
            prune.ln_structured(module, "weight", amount=amount, n=2, dim=0)  # dim 0: output channels


def make_permanent(model: nn.Module) -> None:
    """Write the masked weights into `weight` and drop the masks and hooks (in place)."""
    for _, module in prunable_layers(model):
        if prune.is_pruned(module) and hasattr(module, "weight_orig"):
            prune.remove(module, "weight")


def finetune(model: nn.Module, data, optim_cfg, epochs: int) -> int:
    """Train a pruned model (masks attached) for `epochs` passes over the run's training data with the run's
    optimiser at a tenth of its base rate; returns the steps taken. The model is left in eval mode."""
    from core.engine.optim import build_optimizer

    optimizer = build_optimizer(model, dataclasses.replace(optim_cfg, lr=optim_cfg.lr * FINETUNE_LR_SCALE))
    batches = data.train_batches()
    params = [p for p in model.parameters() if p.requires_grad]
    steps = 0
    model.train()
    try:
        for epoch in range(epochs):
            for batch in batches.epoch(epoch):
                loss, _ = data.training_step(model, batch)
                if not torch.isfinite(loss):
                    raise ModelError(f"the fine-tune after pruning diverged at step {steps} (loss {float(loss)}); "
                                     "try fewer epochs or a lower sparsity")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if optim_cfg.grad_clip:
                    torch.nn.utils.clip_grad_norm_(params, optim_cfg.grad_clip)
                optimizer.step()
                steps += 1
    finally:
        model.eval()
    return steps


def sparsity(model: nn.Module) -> float:
    """The fraction of exact zeros among the weights of convolution and linear layers, float or int8."""
    zeros = total = 0
    for module in model.modules():
        weight = _weight_of(module)
        if weight is None:
            continue
        if weight.is_quantized:
            weight = weight.dequantize()
        zeros += int((weight == 0).sum())
        total += weight.numel()
    return zeros / total if total else 0.0


def _weight_of(module: nn.Module) -> torch.Tensor | None:
    """The weight of a float conv or linear layer, or of its int8 counterpart (whose `weight` is a method
    returning a quantised tensor; fused conv-relu and dynamic linear layers are subclasses); else None."""
    if isinstance(module, PRUNABLE):
        return module.weight.detach()
    from torch.ao.nn import quantized as nnq
    if isinstance(module, (nnq.Linear, nnq.Conv1d, nnq.Conv2d, nnq.Conv3d)):
        return module.weight()
    return None
