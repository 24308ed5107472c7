"""Optimisers and learning-rate schedules (with linear warm-up), stepped once per batch."""

from __future__ import annotations

import math

import torch


NORM_LAYERS = (torch.nn.modules.batchnorm._NormBase, torch.nn.GroupNorm, torch.nn.LayerNorm)


def parameter_groups(model: torch.nn.Module, weight_decay: float, split: bool = True, *, lr: float = 1.0,
                     norm_lr_scale: float = 1.0) -> list[dict]:
    """Weight decay on weight matrices and kernels only; biases, normalisation scales and shifts and
    per-channel scales such as ConvNeXt's layer_scale (C, 1, 1), all with one dimension above 1, are
    not decayed: the "no bias decay" of He et al. 2019 (Bag of Tricks), as in nanoGPT.
    `split=False` gives the single group that checkpoints from before this split hold.

    A `norm_lr_scale` other than 1 (the speedruns' bias scaler, Jordan 2024) gives normalisation layers'
    parameters a third group: learning rate lr * scale, weight decay weight_decay / scale, so that they move
    faster while shrinking by the same amount per step as the weights (lr * decay is unchanged)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if norm_lr_scale != 1.0:
        in_norms = {id(p) for module in model.modules() if isinstance(module, NORM_LAYERS)
                    for p in module.parameters(recurse=False)}
        norms = {"params": [p for p in params if id(p) in in_norms], "lr": lr * norm_lr_scale,
                 "weight_decay": weight_decay / norm_lr_scale}
        return [*_decay_split([p for p in params if id(p) not in in_norms], weight_decay, split, lr), norms]
    return _decay_split(params, weight_decay, split, lr)


def _decay_split(params: list, weight_decay: float, split: bool, lr: float) -> list[dict]:
    if not split or weight_decay == 0:
        return [{"params": params, "weight_decay": weight_decay, "lr": lr}]
    matrix = [sum(size > 1 for size in p.shape) >= 2 for p in params]
    return [{"params": [p for p, m in zip(params, matrix) if m], "weight_decay": weight_decay, "lr": lr},
            {"params": [p for p, m in zip(params, matrix) if not m], "weight_decay": 0.0, "lr": lr}]


def build_optimizer(model: torch.nn.Module, optim_cfg, split: bool = True) -> torch.optim.Optimizer:
    groups = parameter_groups(model, optim_cfg.weight_decay, split, lr=optim_cfg.lr,
                              norm_lr_scale=getattr(optim_cfg, "norm_lr_scale", 1.0))
    if optim_cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=optim_cfg.lr, momentum=optim_cfg.momentum, nesterov=optim_cfg.nesterov)
    if optim_cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=optim_cfg.lr, betas=(optim_cfg.beta1, optim_cfg.beta2))
    return torch.optim.AdamW(groups, lr=optim_cfg.lr, betas=(optim_cfg.beta1, optim_cfg.beta2))


TRIANGLE = (0.2, 0.07)  # the triangle schedule's first and last rates, as fractions of the peak


def lr_factor(step: int, optim_cfg, steps_per_epoch: int) -> float:
    """Multiplier of the base rate at a global step (0-based), warm-up included."""
    total = max(1, optim_cfg.epochs * steps_per_epoch)
    warmup = int(optim_cfg.warmup_epochs * steps_per_epoch)
    kind = optim_cfg.schedule
    if kind == "triangle":  # Jordan 2024: linear from 0.2 up to 1 at the warm-up's end (default 23%), down to 0.07
        peak = max(1, warmup or int(0.23 * total))
        if step < peak:
            return TRIANGLE[0] + (1 - TRIANGLE[0]) * step / peak
        return 1 + (TRIANGLE[1] - 1) * min(1.0, (step - peak) / max(1, total - peak))
    if step < warmup:
        return (step + 1) / warmup
    if kind == "constant":
        return 1.0
    if kind == "step":
        return optim_cfg.gamma ** ((step // steps_per_epoch) // optim_cfg.step_size)
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    if kind == "cosine":
        floor = optim_cfg.min_lr_fraction
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    # one-cycle (Smith & Topin 2017): without its own warm-up, rise over the first 30% from lr/25
    # to lr, then cosine down to lr/10^4
    if warmup == 0:
        rise = 0.3
        if progress < rise:
            return 1 / 25 + (1 - 1 / 25) * 0.5 * (1 - math.cos(math.pi * progress / rise))
        progress = (progress - rise) / (1 - rise)
    return 1e-4 + (1 - 1e-4) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(optimizer, optim_cfg, steps_per_epoch: int):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, optim_cfg, steps_per_epoch))


def lr_curve(optim_cfg, steps_per_epoch: int) -> list[float]:
    """The learning rate at every step of the run: for charts of the schedule before training."""
    total = optim_cfg.epochs * steps_per_epoch
    return [optim_cfg.lr * lr_factor(step, optim_cfg, steps_per_epoch) for step in range(total)]
