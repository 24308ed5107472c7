"""Evaluating a run's checkpoint on its validation split: confusion matrix, per-class scores, mistakes.

The split is rebuilt exactly as training built it (same data config, same seed) and normalised with
the checkpoint's own statistics, and predictions are the argmax of the logits, so the accuracy here
is the accuracy training recorded. Reports are cached next to the checkpoint as
runs/<id>/evaluation_<which>.json, keyed by the checkpoint's modification time and size.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import DataError, LabError
from core.paths import atomic_write, run_dir

CACHE_VERSION = 1
MISCLASSIFIED_COLUMNS = ["index", "true", "predicted", "confidence"]
PER_CLASS_COLUMNS = ["class", "precision", "recall", "f1", "support"]


@dataclass
class EvalReport:
    run_id: str
    which: str
    classes: list[str]
    confusion: np.ndarray  # (K, K) int64; rows = true class, columns = predicted class
    per_class: pd.DataFrame  # class, precision, recall, f1, support
    accuracy: float
    misclassified: pd.DataFrame  # index (into the val split), true, predicted, confidence; most confident first
    epoch: int | None = None

    @property
    def num_samples(self) -> int:
        return int(self.confusion.sum())

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, "which": self.which, "classes": self.classes,
                "confusion": self.confusion.tolist(), "accuracy": self.accuracy, "epoch": self.epoch,
                "misclassified": self.misclassified.to_dict(orient="list")}

    @classmethod
    def from_dict(cls, raw: dict) -> "EvalReport":
        confusion = np.asarray(raw["confusion"], dtype=np.int64).reshape(len(raw["classes"]), -1)
        wrong = pd.DataFrame(raw["misclassified"], columns=MISCLASSIFIED_COLUMNS)
        wrong = wrong.astype({"index": "int64", "true": "str", "predicted": "str", "confidence": "float64"})
        return cls(run_id=raw["run_id"], which=raw["which"], classes=list(raw["classes"]), confusion=confusion,
                   per_class=per_class_scores(confusion, raw["classes"]), accuracy=float(raw["accuracy"]),
                   misclassified=wrong, epoch=raw.get("epoch"))


def per_class_scores(confusion: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """Precision, recall and F1 per class from a confusion matrix (a class never predicted: precision 0)."""
    tp = np.diag(confusion).astype(np.float64)  # (K,)
    predicted = confusion.sum(axis=0).astype(np.float64)  # (K,) column sums
    support = confusion.sum(axis=1)  # (K,) row sums
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return pd.DataFrame({"class": list(classes), "precision": precision, "recall": recall, "f1": f1,
                         "support": support.astype(np.int64)}, columns=PER_CLASS_COLUMNS)


def build_report(run_id: str, which: str, classes: list[str], true: np.ndarray, predicted: np.ndarray,
                 confidence: np.ndarray, epoch: int | None = None) -> EvalReport:
    """The report for true and predicted class indices (N,) and the predicted class's probability (N,)."""
    k = len(classes)
    confusion = np.bincount(true * k + predicted, minlength=k * k).reshape(k, k).astype(np.int64)  # (K, K)
    wrong = np.flatnonzero(true != predicted)
    wrong = wrong[np.argsort(-confidence[wrong], kind="stable")]  # confident mistakes are the interesting ones
    names = np.asarray(classes, dtype=object)
    misclassified = pd.DataFrame({"index": wrong.astype(np.int64), "true": names[true[wrong]].astype(str),
                                  "predicted": names[predicted[wrong]].astype(str),
                                  "confidence": confidence[wrong].astype(np.float64)}, columns=MISCLASSIFIED_COLUMNS)
    accuracy = float(np.trace(confusion) / max(int(confusion.sum()), 1))
    return EvalReport(run_id=run_id, which=which, classes=list(classes), confusion=confusion,
                      per_class=per_class_scores(confusion, classes), accuracy=accuracy,
                      misclassified=misclassified, epoch=epoch)


def evaluate_run(run_id: str, which: str = "best", device="cpu") -> EvalReport:
    """The evaluation report of a run's best.pt or last.pt, from the cache file when it is current."""
    from core.tasks.classification.predictor import load_run_predictor
    predictor = load_run_predictor(run_id, which, device=device)  # clear errors for missing runs/files
    return cached_report(run_id, which, lambda: _compute_report(predictor, run_id, which))


def cached_report(run_id: str, which: str, compute) -> EvalReport:
    """`compute()`'s report for the run's checkpoint `which`, kept next to it as evaluation_<which>.json and
    reused while that checkpoint file is unchanged (any family whose report is an EvalReport)."""
    from core.tasks.checkpoints import checkpoint_path
    stat = checkpoint_path(run_id, which).stat()
    key = {"version": CACHE_VERSION, "checkpoint_mtime_ns": stat.st_mtime_ns, "checkpoint_size": stat.st_size}
    cache = run_dir(run_id) / f"evaluation_{which}.json"
    cached = _read_cache(cache, key)
    if cached is not None:
        return cached
    report = compute()
    _write_cache(cache, {**key, "report": report.to_dict()})
    return report


def _compute_report(predictor, run_id: str, which: str) -> EvalReport:
    from core.config import RunConfig
    from core.data.loader import DeviceBatches

    config = RunConfig.from_dict(predictor.config)
    val_x, val_y, classes = validation_split(json.dumps(predictor.config, sort_keys=True), was_streamed(run_id))
    check_same_classes(run_id, list(classes), list(predictor.classes))
    # The batch size training validated with, so even float reductions run in the same shapes.
    batches = DeviceBatches(val_x, val_y, batch_size=max(config.optim.batch_size, 256), device=predictor.device,
                            mean=predictor.mean, std=predictor.std, shuffle=False)
    predicted, confidence = predict_batches(predictor.model, batches)
    return build_report(run_id, which, list(classes), val_y.numpy(), predicted, confidence, epoch=predictor.epoch)


def check_same_classes(run_id: str, now: list[str], trained: list[str]) -> None:
    """A DataError when the run's data set no longer has the classes its checkpoint was trained on."""
    if now != trained:
        raise DataError(f"the data set of run {run_id} has changed since training: its classes are now "
                        f"{', '.join(now[:10])}, the checkpoint's are {', '.join(trained[:10])}")


def predict_batches(model, batches):
    """(predicted class, its probability) as numpy arrays over every batch of `batches.epoch(0)`."""
    import torch
    predicted, confidence = [], []
    with torch.inference_mode():
        for inputs, _ in batches.epoch(0):
            logits = model(inputs).float()  # (B, K)
            predicted.append(logits.argmax(dim=1).cpu())
            confidence.append(torch.softmax(logits, dim=1).max(dim=1).values.cpu())
    return torch.cat(predicted).numpy(), torch.cat(confidence).numpy()


@functools.lru_cache(maxsize=2)
def validation_split(config_json: str, streamed: bool = False):
    """(val_x (M, C, H, W) uint8, val_y (M,) int64, classes) rebuilt from a run config, seed and all. A run that
    streamed its folder from disk gets only its validation files decoded, as its training decoded them."""
    from core.config import RunConfig
    from core.data import load_dataset

    config = RunConfig.from_dict(json.loads(config_json))
    if streamed:
        import torch
        from core.data.folder import image_files
        from core.data.stream import FileImages
        files = image_files(config.data, config.seed)
        images = FileImages(files.val, config.data.image_size)
        kept = [(image, int(images.labels[i])) for i in range(len(images)) if (image := images.base(i)) is not None]
        if not kept:
            raise DataError(f"none of the {len(files.val)} validation images of {files.source} can be read")
        return (torch.stack([image for image, _ in kept]), torch.tensor([label for _, label in kept]),
                tuple(files.classes))
    splits = load_dataset(config.data, seed=config.seed)
    return splits.val_x, splits.val_y, tuple(splits.classes)


def was_streamed(run_id: str) -> bool:
    """Whether the run read its images from disk while it trained (its summary's data.loading says so)."""
    from core.store import RunStore
    data = RunStore().get_run(run_id).summary.get("data") or {}
    return str(data.get("loading", "")).startswith("streamed")


def val_images(run_id: str, indices) -> list[np.ndarray]:
    """Validation images (H, W, C) uint8 at `indices` of the run's validation split (C = 1 for grey)."""
    from core.store import RunStore

    config = RunStore().get_run(run_id).config
    val_x, _, _ = validation_split(json.dumps(config, sort_keys=True), was_streamed(run_id))
    out = []
    for index in indices:
        index = int(index)
        if not 0 <= index < len(val_x):
            raise LabError(f"validation index {index} is out of range; run {run_id} has {len(val_x)} "
                           "validation images")
        out.append(val_x[index].permute(1, 2, 0).numpy().copy())  # (C, H, W) -> (H, W, C), not a view of the cache
    return out


def _read_cache(path: Path, key: dict) -> EvalReport | None:
    try:
        raw = json.loads(path.read_text())
        if any(raw.get(name) != value for name, value in key.items()):
            return None
        return EvalReport.from_dict(raw["report"])
    except (OSError, ValueError, KeyError, TypeError):  # missing, stale format or damaged: recompute
        return None


def _write_cache(path: Path, payload: dict) -> None:
    """Written whole or not at all. A read-only folder only costs speed: the report is recomputed."""
    try:
        atomic_write(path, lambda handle: handle.write(json.dumps(payload).encode()))
    except OSError:
        pass
