"""What the toolkit (core.toolkit: compress, and later attack, distill...) needs of a trained run's data, as
its family supplies it through the entry point "run_data" (`SPEC.entry("run_data")(run_model) -> RunData`).

Everything is on the CPU and built on demand, so asking for a run's validation metric never decodes its
training set. A family without the entry point is one the toolkit does not support yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator


@dataclass
class RunData:
    metric: str  # the family's validation metric, e.g. "val_acc" or "val_loss"
    mode: str  # "max" or "min": which way is better
    evaluate: Callable[[Any], float]  # model (eval mode, CPU) -> its metric on the run's validation split
    example: Callable[[int], Any]  # n -> a batch of n real validation inputs, as the model takes them
    train_batches: Callable[[], Any]  # () -> a batch source over the training data (for a short fine-tune)
    training_step: Callable  # the task's training_step(model, batch) -> (loss, sums)
    # n -> input batches holding about n training inputs (static int8 calibration); None where no
    # calibration makes sense for the family
    calibration: Callable[[int], Iterator[Any]] | None = None
    note: str = ""  # anything a table of results should say about how the metric was measured
    # n -> (inputs, labels) of the first n validation samples, always the same ones, as the model takes them
    # (adversarial evaluation, core.toolkit.attack); None where the family has no class labels
    labelled: Callable[[int], tuple[Any, Any]] | None = None
