"""Image classification: cross-entropy loss, top-1 and (with more than five classes) top-5 accuracy."""

from __future__ import annotations

from contextlib import nullcontext

import torch
from torch.nn import functional as F


class ClassificationTask:
    name = "classification"
    best_metric = "val_acc"
    best_mode = "max"

    def __init__(self, *, num_classes: int, label_smoothing: float = 0.0):
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing

    def training_step(self, model, inputs, targets):
        logits = model(inputs)  # (B, K)
        loss = F.cross_entropy(logits, targets, label_smoothing=self.label_smoothing)
        with torch.no_grad():
            sums = {"loss": loss.detach().float() * targets.numel(),
                    "correct": (logits.argmax(dim=1) == targets).sum(),
                    "count": torch.tensor(targets.numel(), device=targets.device)}
        return loss, sums

    def summarize(self, sums):
        count = max(float(sums["count"]), 1.0)
        return {"loss": float(sums["loss"]) / count, "acc": float(sums["correct"]) / count}

    @torch.inference_mode()
    def evaluate(self, model, batches, autocast=None):
        was_training = model.training
        model.eval()
        loss_sum = correct = correct5 = count = None
        for inputs, targets in batches:
            with autocast() if autocast else nullcontext():
                logits = model(inputs).float()  # (B, K)
            batch_loss = F.cross_entropy(logits, targets, reduction="sum")
            top = logits.topk(min(5, self.num_classes), dim=1).indices  # (B, 5)
            hits = top == targets[:, None]
            values = (batch_loss, hits[:, 0].sum(), hits.any(dim=1).sum(), targets.numel())
            if loss_sum is None:
                loss_sum, correct, correct5, count = values
            else:
                loss_sum, correct, correct5 = loss_sum + values[0], correct + values[1], correct5 + values[2]
                count += values[3]
        model.train(was_training)
        if not count:
            return {}
        metrics = {"val_loss": float(loss_sum) / count, "val_acc": float(correct) / count}
        if self.num_classes > 5:
            metrics["val_top5"] = float(correct5) / count
        return metrics

    @torch.inference_mode()
    def predict(self, model, batches) -> tuple[torch.Tensor, torch.Tensor]:
        """(predicted class, true class) for every sample, on the CPU: for confusion matrices."""
        was_training = model.training
        model.eval()
        preds, trues = [], []
        for inputs, targets in batches:
            preds.append(model(inputs).argmax(dim=1).cpu())
            trues.append(targets.cpu())
        model.train(was_training)
        return torch.cat(preds), torch.cat(trues)

