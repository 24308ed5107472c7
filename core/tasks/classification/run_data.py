"""A classification run's data as the toolkit needs it (core.tasks.run_data.RunData), on the CPU.

The validation split is rebuilt as evaluation.py rebuilds it (same config and seed, the files a streamed
run read) and normalised with the checkpoint's own mean and std, so the accuracy measured on a compressed
copy of the model is comparable with the one training recorded. Training images (for calibration and a
short fine-tune) are decoded only when asked for; a streamed run decodes at most STREAMED_TRAIN_LIMIT.
"""

from __future__ import annotations

import functools
import json

import torch

from core.errors import DataError
from core.tasks.run_data import RunData

STREAMED_TRAIN_LIMIT = 4096  # training images a streamed (larger than memory) run decodes for a fine-tune
CALIBRATION_BATCH = 32


def run_data(run_model) -> RunData:
    from core.data.loader import DeviceBatches
    from core.tasks.classification import ClassificationTask
    from core.tasks.classification.evaluation import check_same_classes, validation_split, was_streamed

    config, run_id = run_model.config, run_model.run_id
    classes = [str(c) for c in run_model.metadata["classes"]]
    pre = run_model.metadata["preprocessing"]
    mean, std = [float(m) for m in pre["mean"]], [float(s) for s in pre["std"]]
    streamed = was_streamed(run_id)
    val_x, val_y, val_classes = validation_split(json.dumps(config.to_dict(), sort_keys=True), streamed)
    check_same_classes(run_id, list(val_classes), classes)
    if len(val_y) == 0:
        raise DataError(f"run {run_id} has no validation images to measure a model on")
    task = ClassificationTask(num_classes=len(classes), label_smoothing=config.optim.label_smoothing)
    val = DeviceBatches(val_x, val_y, batch_size=max(config.optim.batch_size, 256), device="cpu", mean=mean,
                        std=std, shuffle=False)

    def normalise(x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) uint8 -> float32, as DeviceBatches does
        m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        return (x.to(torch.float32) / 255.0 - m) / s

    def example(n: int) -> torch.Tensor:
        return normalise(val_x[torch.arange(n) % len(val_x)])  # (n, C, H, W), repeating a small split

    def labelled(n: int) -> tuple[torch.Tensor, torch.Tensor]:  # (n, C, H, W) float32, (n,) int64
        return normalise(val_x[:n]), val_y[:n].to(torch.int64)

    train_images = functools.cache(lambda: _train_images(config, streamed))

    def train_batches():
        x, y = train_images()
        batch, d = config.optim.batch_size, config.data
        return DeviceBatches(x, y, batch_size=batch, device="cpu", mean=mean, std=std, shuffle=True,
                             drop_last=len(y) > batch, augment_crop=d.augment_crop, crop_padding=d.crop_padding,
                             augment_flip=d.augment_flip, seed=config.seed)

    def calibration(n: int):
        x, _ = train_images()
        x = x[:n]
        for start in range(0, len(x), CALIBRATION_BATCH):
            yield normalise(x[start:start + CALIBRATION_BATCH])

    note = f"val_acc on the run's {len(val_y)} validation images"
    if streamed:
        note += f"; a fine-tune sees at most {STREAMED_TRAIN_LIMIT} training images"
    return RunData(metric="val_acc", mode="max", evaluate=lambda model: task.evaluate(model, val)["val_acc"],
                   example=example, train_batches=train_batches, training_step=task.training_step,
                   calibration=calibration, note=note, labelled=labelled)


def _train_images(config, streamed: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(train_x (N, C, H, W) uint8, train_y (N,) int64) of the run's training split, decoded as training did."""
    if not streamed:
        from core.data import load_dataset
        splits = load_dataset(config.data, seed=config.seed)
        return splits.train_x, splits.train_y
    from core.data.folder import image_files
    from core.data.stream import FileImages
    files = image_files(config.data, config.seed)
    images = FileImages(files.train[:STREAMED_TRAIN_LIMIT], config.data.image_size)
    kept = [(image, int(images.labels[i])) for i in range(len(images)) if (image := images.base(i)) is not None]
    if not kept:
        raise DataError(f"none of the training images of {files.source} can be read")
    return torch.stack([image for image, _ in kept]), torch.tensor([label for _, label in kept])
