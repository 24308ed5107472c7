"""Applying live-control requests (core.store.controls) inside the training loop.

The worker's heartbeat thread notices pending requests and sets `waiting`; this callback applies them in the
training thread between two steps, so a change never lands in the middle of an optimiser step. Each applied
request is written back to the store (with its step, the old value and a note) and logged as a run event.
"""

from __future__ import annotations

import threading

from core.engine.callbacks import Callback
from core.store.controls import EPOCHS, LR, STOP_AFTER_EPOCH, Control


class LiveControl(Callback):
    def __init__(self, store, run_id: str, waiting: threading.Event | None = None):
        self.store, self.run_id = store, run_id
        self.waiting = waiting or threading.Event()
        self.stop_at: int | None = None  # the epoch after which a "stop after this epoch" request ends the run

    def on_fit_start(self, trainer):
        # a resumed run keeps a stop it had accepted before it was interrupted
        for control in self.store.controls(self.run_id):
            if control.applied and control.kind == STOP_AFTER_EPOCH and control.value is not None:
                self.stop_at = int(control.value)
        self._stop_if_due(trainer)
        self.apply_pending(trainer)  # requests made while the run was queued

    def on_train_batch_end(self, trainer):
        if self.waiting.is_set():
            self.waiting.clear()
            self.apply_pending(trainer)

    def on_epoch_end(self, trainer, metrics):
        # asked without waiting for the heartbeat: more epochs asked for during the last one's validation
        # must land before the loop decides that the run is over
        self.apply_pending(trainer, at_epoch_end=True)
        self._stop_if_due(trainer)

    def _stop_if_due(self, trainer) -> None:
        if self.stop_at is not None and trainer.epoch >= self.stop_at:
            trainer.should_stop = True
            trainer.stop_reason = f"stopped after epoch {trainer.epoch}, as asked while it trained"

    def apply_pending(self, trainer, at_epoch_end: bool = False) -> None:
        for control in self.store.pending_controls(self.run_id):
            self._apply(trainer, control, at_epoch_end)

    def _apply(self, trainer, control: Control, at_epoch_end: bool) -> None:
        epoch = trainer.epoch + trainer.batch_in_epoch / max(1, trainer.steps_per_epoch)
        # the epoch "this epoch" means: the one being trained, or at an epoch's end (asked during its
        # validation) the one that just ended
        under_way = trainer.epoch if at_epoch_end else trainer.epoch + 1
        note = ""
        if control.kind == EPOCHS:
            old = trainer.config.optim.epochs
            value = max(int(control.value), under_way)
            if value != int(control.value):
                note = f"raised to {value}: epoch {under_way} was already under way"
            if self.stop_at is not None and value > self.stop_at:  # more epochs after a stop: the stop is withdrawn
                self.stop_at = None
                note = (note + "; " if note else "") + "the earlier stop request is withdrawn"
            trainer.set_epochs(value)
            message = f"epochs {old} → {value} at step {trainer.step}"
        elif control.kind == LR:
            old, value = trainer.config.optim.lr, float(control.value)
            trainer.set_base_lr(value)
            message = f"learning rate {old:g} → {value:g} at step {trainer.step} (the schedule keeps its shape)"
        else:
            old, value = None, under_way
            self.stop_at = value
            message = f"stop after epoch {value} requested at step {trainer.step}"
        self.store.apply_control(control, value=value, old_value=old, step=trainer.step, epoch=epoch, note=note)
        self.store.log_event(self.run_id, message + (f"; {note}" if note else ""))
