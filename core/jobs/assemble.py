"""Build everything a run needs from its config: the task's data, model and step, and the trainer."""

from __future__ import annotations

import torch

from core.engine.devices import resolve_device
from core.engine.trainer import Trainer


def assemble(config, *, device: torch.device | None = None, callbacks=(), stop_event=None, splits=None,
             world=None, initialise: bool = True) -> Trainer:
    """A ready-to-fit Trainer for a validated RunConfig (seeded, so the same config builds the same run).
    `initialise` off (a resume, which loads its own checkpoint next) skips copying model.init_from's weights."""
    from core.tasks import task_spec

    device = device or resolve_device(config.device)
    torch.manual_seed(config.seed)
    spec = task_spec(config.task)
    if splits is not None:  # image classification only: data already loaded by the caller
        built = spec.setup(config, device, splits=splits)
    else:
        built = spec.setup(config, device)
    from core.models import parameter_count
    from core.tasks.finetune import adapt
    # start from another run, then LoRA adapters or a frozen backbone (core.tasks.finetune)
    model, finetuned = adapt(config, built.model, built.metadata, initialise=initialise)
    metadata = {"task": config.task, "params": parameter_count(model),
                "trainable_params": parameter_count(model, trainable_only=True), **built.metadata}
    if finetuned:
        metadata.update(params=finetuned["params"], trainable_params=finetuned["trainable_params"], finetune=finetuned)
    return Trainer(config=config, model=model, task=built.task, train_batches=built.train_batches,
                   val_batches=built.val_batches, device=device, callbacks=[*built.callbacks, *callbacks], stop_event=stop_event,
                   metadata=metadata, world=world)
