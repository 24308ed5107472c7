"""Evaluating a text classification run on its validation split: the confusion matrix, per-class precision,
recall and F1, and the most confident mistakes with their texts (the same report as image classification's,
core.tasks.classification.evaluation.EvalReport).

The split is rebuilt as training built it (same data config and seed) and encoded with the checkpoint's own
vocabulary, so the accuracy here is the one training recorded for that checkpoint.
"""

from __future__ import annotations

import torch

from core.errors import LabError


def evaluate_run(run_id: str, which: str = "best", device="cpu"):
    """The report of the run's best.pt or last.pt, cached next to it until the checkpoint changes."""
    from core.tasks.checkpoints import load_run_model
    from core.tasks.classification.evaluation import cached_report
    run = load_run_model(run_id, which, device=device)  # clear errors for missing runs/files
    return cached_report(run_id, which, lambda: _compute_report(run, run_id, which, device))


def _compute_report(run, run_id: str, which: str, device):
    from core.data.tokens import TokenVocab
    from core.tasks.classification.evaluation import build_report, check_same_classes
    from core.tasks.text_classification import load_texts, predict_batches, val_batches
    texts = load_texts(run.config)
    check_same_classes(run_id, list(texts.classes), list(run.metadata["classes"]))
    batches = val_batches(run.config, TokenVocab.from_dict(run.metadata["vocab"]), texts, torch.device(device))
    predicted, confidence, labels, _ = predict_batches(run.model, batches)
    return build_report(run_id, which, list(texts.classes), labels.numpy(), predicted.numpy(), confidence.numpy(),
                        epoch=run.epoch)


def val_texts(run_id: str, indices) -> list[str]:
    """The validation texts at `indices` of a run's split, for showing its mistakes."""
    from core.store import RunStore
    from core.config import RunConfig
    from core.tasks.text_classification import load_texts

    texts = load_texts(RunConfig.from_dict(RunStore().get_run(run_id).config)).val
    out = []
    for index in indices:
        if not 0 <= int(index) < len(texts):
            raise LabError(f"validation index {index} is out of range; run {run_id} has {len(texts)} validation texts")
        out.append(texts[int(index)][0])
    return out
