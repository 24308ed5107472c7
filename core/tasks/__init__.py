"""Tasks say what one training step computes and how a model is evaluated; the engine says how to run it.

A task never loops over data itself except in `evaluate`, and keeps running sums as device
tensors so that the engine decides when to synchronise with the device (once per log window).
"""

from __future__ import annotations

from typing import Protocol

import torch


class Task(Protocol):
    name: str
    best_metric: str  # epoch metric the checkpointer and early stopping watch, e.g. "val_acc"
    best_mode: str  # "max" or "min"

    def training_step(self, model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor
                      ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Return the loss to back-propagate and running sums (device tensors) for the log."""

    def summarize(self, sums: dict[str, torch.Tensor]) -> dict[str, float]:
        """Turn accumulated sums into metrics, e.g. {'loss': ..., 'acc': ...}."""

    def evaluate(self, model: torch.nn.Module, batches) -> dict[str, float]:
        """Metrics over a whole split, computed under inference mode."""


def build_task(config, num_classes: int):
    from core.tasks.classification import ClassificationTask
    return ClassificationTask(num_classes=num_classes, label_smoothing=config.optim.label_smoothing)
