"""A video run's checkpoint on its validation clips: the same report as image classification (confusion
matrix, per-class precision and recall, the most confident mistakes), computed the way training validated."""

from __future__ import annotations


def evaluate_run(run_id: str, which: str = "best", device="cpu"):
    """core.tasks.classification.evaluation.EvalReport for the run's best.pt or last.pt, cached next to it until
    the checkpoint changes."""
    from core.tasks.checkpoints import load_run_model
    from core.tasks.classification.evaluation import cached_report
    run_model = load_run_model(run_id, which, device=device)
    run_model.require("video")
    return cached_report(run_id, which, lambda: _compute_report(run_model, run_id, which))


def _compute_report(run_model, run_id: str, which: str):
    from core.data import load_dataset
    from core.data.clips import ClipBatches
    from core.tasks.classification.evaluation import build_report, check_same_classes, predict_batches

    config, pre = run_model.config, run_model.metadata["preprocessing"]
    classes = list(run_model.metadata["classes"])
    splits = load_dataset(config.data, seed=config.seed)  # the same seeded split training validated on
    check_same_classes(run_id, list(splits.classes), classes)
    batches = ClipBatches(splits.val_x, splits.val_y, batch_size=max(config.optim.batch_size, 128),
                          device=next(run_model.model.parameters()).device, mean=pre["mean"], std=pre["std"],
                          shuffle=False)
    predicted, confidence = predict_batches(run_model.model, batches)
    return build_report(run_id, which, classes, splits.val_y.numpy(), predicted, confidence, epoch=run_model.epoch)
