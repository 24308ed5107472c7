"""A video run's checkpoint on its validation clips: the same report as image classification (confusion
matrix, per-class precision and recall, the most confident mistakes), computed the way training validated."""

from __future__ import annotations

from core.errors import DataError


def evaluate_run(run_id: str, which: str = "best", device="cpu"):
    """core.tasks.classification.evaluation.EvalReport for the run's best.pt or last.pt."""
    import torch

    from core.data import load_dataset
    from core.data.clips import ClipBatches
    from core.tasks.checkpoints import load_run_model
    from core.tasks.classification.evaluation import build_report

    run_model = load_run_model(run_id, which, device=device)
    run_model.require("video")
    config, pre = run_model.config, run_model.metadata["preprocessing"]
    classes = list(run_model.metadata["classes"])
    splits = load_dataset(config.data, seed=config.seed)  # the same seeded split training validated on
    if list(splits.classes) != classes:
        raise DataError(f"the data set of run {run_id} has changed since training: its classes are now "
                        f"{', '.join(list(splits.classes)[:10])}, the checkpoint's are {', '.join(classes[:10])}")
    model_device = next(run_model.model.parameters()).device
    batches = ClipBatches(splits.val_x, splits.val_y, batch_size=max(config.optim.batch_size, 128),
                          device=model_device, mean=pre["mean"], std=pre["std"], shuffle=False)
    predicted, confidence = [], []
    with torch.inference_mode():
        for clips, _ in batches.epoch(0):
            logits = run_model.model(clips).float()  # (B, K)
            predicted.append(logits.argmax(dim=1).cpu())
            confidence.append(torch.softmax(logits, dim=1).max(dim=1).values.cpu())
    return build_report(run_id, which, classes, splits.val_y.numpy(), torch.cat(predicted).numpy(),
                        torch.cat(confidence).numpy(), epoch=run_model.epoch)
