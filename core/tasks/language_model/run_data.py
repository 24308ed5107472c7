"""A language-model run's data as the toolkit needs it (core.tasks.run_data.RunData), on the CPU: the run's
own validation windows (the same ones every evaluation) and its training windows, rebuilt by `setup`."""

from __future__ import annotations

import torch

from core.errors import DataError
from core.tasks.run_data import RunData


def run_data(run_model) -> RunData:
    from core.tasks.language_model import setup

    built = setup(run_model.config, torch.device("cpu"))  # reads the text; the model it builds is dropped
    if list(built.metadata["vocab"]) != list(run_model.metadata["vocab"]):
        raise DataError(f"the text of run {run_model.run_id} has changed since training: its characters are not "
                        "the ones the checkpoint was trained on")
    val = built.val_batches
    first_inputs = next(iter(val.epoch(0)))[0]  # (B, T) int64 character ids

    def example(n: int) -> torch.Tensor:
        return first_inputs[torch.arange(n) % len(first_inputs)]  # (n, T)

    return RunData(metric="val_loss", mode="min",
                   evaluate=lambda model: built.task.evaluate(model, val)["val_loss"],
                   example=example, train_batches=lambda: built.train_batches,
                   training_step=built.task.training_step, calibration=None,
                   note=f"val_loss in nats per character over {len(val)} batches of {val.context}-character "
                        "windows; latency is per window")
