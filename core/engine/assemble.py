"""Build everything a run needs from its config: data on the device, model, task and trainer."""

from __future__ import annotations

import torch

from core.engine.devices import resolve_device
from core.engine.trainer import Trainer


def preprocessing_for(config, splits) -> dict:
    """How inputs are normalised: the pretrained weights' statistics, or the training set's own."""
    if config.model.pretrained:
        from core.models.imagenet import weights_preprocessing
        weights = weights_preprocessing(config.model.name)
        mean, std = weights["mean"], weights["std"]
        if splits.channels == 1:  # grey images are expanded to RGB inside the model
            mean, std = [sum(mean) / 3], [sum(std) / 3]
    else:
        mean, std = splits.mean_std()
    return {"mean": [float(m) for m in mean], "std": [float(s) for s in std],
            "image_size": splits.image_size, "channels": splits.channels}


def assemble(config, *, device: torch.device | None = None, callbacks=(), stop_event=None, splits=None) -> Trainer:
    """A ready-to-fit Trainer for a validated RunConfig (seeded, so the same config builds the same run)."""
    from core.data import load_dataset
    from core.data.loader import DeviceBatches
    from core.models import build_from_config, parameter_count
    from core.tasks import build_task

    device = device or resolve_device(config.device)
    torch.manual_seed(config.seed)
    splits = splits or load_dataset(config.data, seed=config.seed)
    pre = preprocessing_for(config, splits)
    batch = config.optim.batch_size
    train = DeviceBatches(splits.train_x, splits.train_y, batch_size=batch, device=device, mean=pre["mean"],
                          std=pre["std"], shuffle=True, drop_last=len(splits.train_y) > batch,
                          augment_crop=config.data.augment_crop, crop_padding=config.data.crop_padding,
                          augment_flip=config.data.augment_flip, seed=config.seed)
    val = DeviceBatches(splits.val_x, splits.val_y, batch_size=max(batch, 256), device=device, mean=pre["mean"],
                        std=pre["std"], shuffle=False)
    model = build_from_config(config.model, num_classes=splits.num_classes, in_channels=splits.channels,
                              image_size=splits.image_size)
    metadata = {"classes": list(splits.classes), "preprocessing": pre, "params": parameter_count(model),
                "trainable_params": parameter_count(model, trainable_only=True),
                "data": {"train": len(splits.train_y), "val": len(splits.val_y), "skipped": splits.skipped,
                         "source": splits.source}}
    task = build_task(config, splits.num_classes)
    return Trainer(config=config, model=model, task=task, train_batches=train, val_batches=val, device=device,
                   callbacks=callbacks, stop_event=stop_event, metadata=metadata)
