"""Typed callbacks: methods the trainer calls, each a no-op unless overridden.

The store logger, checkpointing, early stopping and the terminal progress bar are callbacks,
so the trainer itself knows nothing about where metrics go or how runs are recorded.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

from core.engine.checkpoint import BEST, LAST, save_checkpoint
from core.errors import Cancelled, StorageError


class Callback:
    def on_fit_start(self, trainer) -> None: ...
    def on_train_batch_end(self, trainer) -> None: ...
    def on_train_log(self, trainer, metrics: dict[str, float]) -> None: ...
    def on_epoch_end(self, trainer, metrics: dict[str, float]) -> None: ...
    def on_cancel(self, trainer) -> None: ...
    def on_fit_end(self, trainer) -> None: ...
    def on_exception(self, trainer, exc: BaseException) -> None: ...


def is_better(value: float, best: float | None, mode: str) -> bool:
    if value is None or math.isnan(value):
        return False
    return best is None or (value > best if mode == "max" else value < best)


class Checkpointer(Callback):
    """last.pt after every epoch (and when cancelled); best.pt whenever the watched metric improves."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def on_epoch_end(self, trainer, metrics):
        last = save_checkpoint(trainer.state_dict(), self.folder / LAST)
        trainer.saved_step = trainer.step
        if trainer.best_epoch == trainer.epoch:  # this epoch set a new best
            shutil.copyfile(last, self.folder / (BEST + ".tmp"))
            (self.folder / (BEST + ".tmp")).replace(self.folder / BEST)

    def on_cancel(self, trainer):
        save_checkpoint(trainer.state_dict(), self.folder / LAST)
        trainer.saved_step = trainer.step


class EarlyStopping(Callback):
    """Stop when the watched metric has not improved for `patience` epochs."""

    def __init__(self, patience: int):
        self.patience = patience

    def on_epoch_end(self, trainer, metrics):
        if trainer.epoch - trainer.best_epoch >= self.patience:
            trainer.should_stop = True
            trainer.stop_reason = (f"early stopping: {trainer.task.best_metric} has not improved for "
                                   f"{self.patience} epoch(s) since epoch {trainer.best_epoch}")


class StoreLogger(Callback):
    """Buffers metrics into the run store, keeps the run summary current and records the outcome."""

    def __init__(self, store, run_id: str):
        from core.store import MetricBuffer
        self.store, self.run_id = store, run_id
        self.buffer = MetricBuffer(store, run_id)

    def on_fit_start(self, trainer):
        # steps per epoch, parameter counts and data sizes: what a live view needs for progress and ETA
        self.store.update_summary(self.run_id, {**trainer.summary(), "data": trainer.metadata.get("data")})

    def on_train_log(self, trainer, metrics):
        epoch = trainer.epoch + trainer.batch_in_epoch / max(1, trainer.steps_per_epoch)
        for key, value in metrics.items():
            self.buffer.add(trainer.step, epoch, key, value)

    def on_epoch_end(self, trainer, metrics):
        for key, value in metrics.items():
            self.buffer.add(trainer.step, trainer.epoch, key, value)
        self.buffer.flush()
        self.store.update_summary(self.run_id, trainer.summary())

    def on_cancel(self, trainer):
        self.buffer.flush()
        self.store.update_summary(self.run_id, trainer.summary())

    def on_fit_end(self, trainer):
        self.buffer.flush()
        self.store.update_summary(self.run_id, trainer.summary())
        if trainer.stop_reason:
            self.store.log_event(self.run_id, trainer.stop_reason)
        self.store.finish(self.run_id, "completed")

    def on_exception(self, trainer, exc):
        self.buffer.flush()
        self.store.update_summary(self.run_id, trainer.summary())
        saved = getattr(trainer, "saved_step", None)
        where = (f"a resume continues from step {saved}, its last checkpoint" if saved is not None
                 else "no checkpoint was saved yet, so a resume starts again from step 0")
        if isinstance(exc, (Cancelled, KeyboardInterrupt)):
            self.store.log_event(self.run_id, f"cancelled at step {trainer.step}; {where}")
            self.store.finish(self.run_id, "cancelled")
        elif isinstance(exc, StorageError):  # a full or read-only disk: resumable once there is space
            self.store.log_event(self.run_id, f"stopped at step {trainer.step}: {exc}; {where}", level="error")
            self.store.finish(self.run_id, "interrupted", error=str(exc))
        else:
            from core.errors import describe_exception
            self.store.finish(self.run_id, "failed", error=describe_exception(exc))


class ProgressBar(Callback):
    """A tqdm bar over all steps of the run, showing loss, accuracy and samples/s."""

    def __init__(self):
        self.bar = None

    def on_fit_start(self, trainer):
        from tqdm import tqdm
        total = trainer.config.optim.epochs * trainer.steps_per_epoch
        self.bar = tqdm(total=total, initial=trainer.step, unit="step", dynamic_ncols=True,
                        desc=f"epoch {trainer.epoch + 1}/{trainer.config.optim.epochs}")

    def on_train_batch_end(self, trainer):
        self.bar.update(1)

    def on_train_log(self, trainer, metrics):
        shown = {k[len("train_"):]: f"{v:.4f}" if k == "train_loss" else f"{v:.3f}"
                 for k, v in metrics.items() if k.startswith("train_")}
        self.bar.set_postfix(**shown, per_s=f"{metrics['samples_per_s']:.0f}", refresh=False)

    def on_epoch_end(self, trainer, metrics):
        shown = {k: v for k, v in metrics.items() if k.startswith("val_")}
        self.bar.write(f"epoch {trainer.epoch}: " + ", ".join(f"{k} {v:.4f}" for k, v in shown.items())
                       + f" ({metrics.get('epoch_time_s', 0):.1f}s)")
        self.bar.set_description(f"epoch {min(trainer.epoch + 1, trainer.config.optim.epochs)}"
                                 f"/{trainer.config.optim.epochs}")

    def on_fit_end(self, trainer):
        self.bar.close()

    def on_exception(self, trainer, exc):
        if self.bar is not None:
            self.bar.close()
