"""Steering a queued or running job: more or fewer epochs, a new learning rate, stop after this epoch.

`request` checks the change against the run's config (the same bounds a new run gets) and queues it in the
store; the run's worker applies it between two steps (core.engine.control) within a heartbeat (about 2 s).
"""

from __future__ import annotations

import math
import time

from core.errors import ConfigError, LabError
from core.store.controls import ENDED_FIRST, EPOCHS, LR, STOP_AFTER_EPOCH, Control
from core.store.records import ACTIVE_STATUSES


def _store():
    from core.store import RunStore
    return RunStore()


def request(run_id: str, *, epochs: int | None = None, lr: float | None = None,
            stop_after_epoch: bool = False) -> list[int]:
    """Queue the given changes for the run's worker (in this order: epochs, learning rate, stop); returns the
    requests' ids. A value equal to the run's current one is no change (a form may send both fields). A bad value
    changes nothing and raises ConfigError naming the field."""
    from core.config import RunConfig
    store = _store()
    run = store.get_run(run_id)
    if run.status not in ACTIVE_STATUSES:  # checked again when the request is written
        raise LabError(f"run {run_id} is {run.status}; only a queued or running run can be changed")
    config = RunConfig.from_dict(run.config)
    if epochs is not None and epochs == config.optim.epochs:
        epochs = None
    if lr is not None and math.isclose(lr, config.optim.lr, rel_tol=1e-9):
        lr = None
    if epochs is None and lr is None and not stop_after_epoch:
        raise ConfigError("nothing to change: give new epochs, a new learning rate or stop after this epoch")
    changes: list[tuple[str, float | None]] = []
    if epochs is not None:
        if isinstance(epochs, bool) or int(epochs) != epochs:
            raise ConfigError(f"epochs: expected a whole number, got {epochs!r}")
        done = int(run.summary.get("epochs_done") or 0)
        if epochs <= done:
            raise ConfigError(f"epochs: the run has already trained {done} epoch(s); ask for more than {done}, "
                              "or stop it after this epoch")
        config.replace(**{"optim.epochs": int(epochs)}).check_common()
        changes.append((EPOCHS, int(epochs)))
    if lr is not None:
        if not math.isfinite(lr):
            raise ConfigError(f"optim.lr: expected a finite number, got {lr}")
        config.replace(**{"optim.lr": float(lr)}).check_common()
        changes.append((LR, float(lr)))
    if stop_after_epoch:
        changes.append((STOP_AFTER_EPOCH, None))
    return [store.request_control(run_id, kind, value) for kind, value in changes]


def wait_applied(run_id: str, ids: list[int], timeout_s: float = 15.0) -> list[Control]:
    """The requests `ids` once the worker applied them (or as they stand after `timeout_s`: a queued run
    applies them when it starts)."""
    store = _store()
    deadline = time.time() + timeout_s
    while True:
        mine = [c for c in store.controls(run_id) if c.id in ids]
        if all(c.applied for c in mine) or time.time() >= deadline:
            return mine
        if store.get_run(run_id).status not in ACTIVE_STATUSES:
            return mine
        time.sleep(0.2)


def describe(control: Control, run_active: bool = True) -> str:
    """One line for a terminal or a page: what was asked, and where it took effect."""
    if control.kind == EPOCHS:
        what = f"epochs {_number(control.old_value)} → {_number(control.value)}" if control.applied \
            else f"epochs → {_number(control.value)}"
    elif control.kind == LR:
        what = f"learning rate {control.old_value:g} → {control.value:g}" if control.applied \
            else f"learning rate → {control.value:g}"
    else:
        what = f"stop after epoch {_number(control.value)}" if control.applied else "stop after this epoch"
    if not control.applied:
        return f"{what}: waiting for the worker" if run_active and not control.note else f"{what}: {ENDED_FIRST}"
    return f"{what} at step {control.step}" + (f" ({control.note})" if control.note else "")


def _number(value: float | None) -> str:
    return "?" if value is None else f"{value:g}"

