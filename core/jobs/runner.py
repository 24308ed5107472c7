"""Running one recorded run to its end, in whichever process calls it (a worker or the CLI)."""

from __future__ import annotations

import os
import signal
import threading
import traceback

from core.errors import describe_exception
from core.paths import LAST_CHECKPOINT as LAST, run_dir

HEARTBEAT_S = float(os.environ.get("LAB_HEARTBEAT_S", "2"))


class Heartbeat(threading.Thread):
    """Marks the run alive every few seconds, turns a cancel request into the stop event and a pending
    live-control request into `controls_waiting` (the trainer applies it between two steps)."""

    def __init__(self, run_id: str, stop_event: threading.Event):
        super().__init__(daemon=True, name=f"heartbeat-{run_id}")
        self.run_id, self.stop_event, self.done = run_id, stop_event, threading.Event()
        self.controls_waiting = threading.Event()

    def run(self) -> None:
        from core.store import RunStore
        store = RunStore()
        while not self.done.is_set():
            try:
                if store.heartbeat(self.run_id):
                    self.stop_event.set()
                if store.has_pending_controls(self.run_id):
                    self.controls_waiting.set()
            except Exception:  # a busy or briefly unreadable db must not kill the run
                pass
            self.done.wait(HEARTBEAT_S)

    def stop(self) -> None:
        self.done.set()


def _install_signal_handlers(stop_event: threading.Event) -> dict:
    """Ctrl-C and SIGTERM finish the current step and save a checkpoint instead of dying mid-write;
    a second Ctrl-C stops at once. Returns the previous handlers, to put back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handle(signum, _frame):
        if stop_event.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop_event.set()
    return {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}


def execute_run(run_id: str, *, resume: bool = False, progress: bool = False, slot: str | None = None,
                ticket: int | None = None) -> str:
    """Wait for a device slot (`slot`, e.g. 'cuda0', in the line at `ticket`), train, and record the
    outcome; returns the final status. Torch is imported only once the slot is held, so a queued worker
    stays a small process."""
    from core.config import RunConfig
    from core.jobs.slots import device_slot
    from core.store import RunStore

    store = RunStore()
    run = store.get_run(run_id)
    config = RunConfig.from_dict(run.config)
    folder = run_dir(run_id, create=True)
    stop_event = threading.Event()
    previous_handlers = _install_signal_handlers(stop_event)
    store.set_pid(run_id, os.getpid())
    heartbeat = Heartbeat(run_id, stop_event)
    heartbeat.start()
    fitting = False
    try:
        if slot is None:
            from core.jobs import device_slot_of
            slot = device_slot_of(config)
        with device_slot(slot, ticket=ticket, while_waiting=lambda: not stop_event.is_set()) as acquired:
            if not acquired or store.get_run(run_id).cancel_requested:  # cancelled while queued
                store.finish(run_id, "cancelled")
                return "cancelled"
            from core.engine.callbacks import Checkpointer, EarlyStopping, ProgressBar, StoreLogger
            from core.engine.control import LiveControl
            from core.engine.devices import describe, library_versions, resolve_device
            from core.engine.samples import SampleLogger
            from core.errors import Cancelled
            from core.jobs.assemble import assemble
            device = resolve_device(config.device)
            store.mark_running(run_id, pid=os.getpid(), device=describe(device), versions=library_versions())
            # LiveControl before the checkpointer: a stop or an epoch count applied at an epoch's end is saved with it
            callbacks = [StoreLogger(store, run_id), LiveControl(store, run_id, heartbeat.controls_waiting),
                         Checkpointer(folder), SampleLogger(folder)]
            if config.early_stopping_patience:
                callbacks.append(EarlyStopping(config.early_stopping_patience))
            if progress:
                callbacks.append(ProgressBar())
            threads = os.environ.get("LAB_CPU_THREADS", "")
            if device.type == "cpu" and threads.isdigit() and int(threads) > 0:
                import torch  # on a busy small machine fewer threads than cores avoids oversubscription
                torch.set_num_threads(int(threads))
            trainer = assemble(config, device=device, callbacks=callbacks, stop_event=stop_event)
            if resume:
                _restore(trainer, store, run_id, folder)
            fitting = True
            try:
                trainer.fit()  # the store logger records completed / failed / cancelled
            except Cancelled:
                pass
            except Exception as exc:
                _print_unexpected(exc)
    except Exception as exc:
        if not fitting:
            _print_unexpected(exc)
            store.finish(run_id, "failed", error=describe_exception(exc))
    finally:
        heartbeat.stop()
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)
    return store.get_run(run_id).status


def _print_unexpected(exc: Exception) -> None:
    """A traceback for bugs (it lands in the run's log.txt); user-fixable errors are recorded as messages."""
    from core.errors import LabError
    if not isinstance(exc, LabError):
        traceback.print_exception(exc)


RESUMED = "resumed from step"  # the event that starts a resumed run's new stretch of training


def resumed_at(store, run_id: str) -> float | None:
    """When the run last resumed from a checkpoint (its ETA is paced from then), or None if it never did."""
    events = store.events(run_id)
    times = events.time[events.message.str.startswith(RESUMED)]
    return float(times.iloc[-1]) if len(times) else None


def _restore(trainer, store, run_id: str, folder) -> None:
    """Continue from last.pt; history past the checkpoint is dropped so no step appears twice."""
    from core.engine.checkpoint import load_checkpoint
    checkpoint = folder / LAST
    if not checkpoint.exists():
        store.delete_metrics_after(run_id, -1)
        store.log_event(run_id, "no checkpoint was saved before the run stopped: restarting from step 0")
        return
    trainer.load_state_dict(load_checkpoint(checkpoint, map_location=trainer.device))
    store.delete_metrics_after(run_id, trainer.step)
    from core.engine.samples import drop_samples_after
    drop_samples_after(folder, trainer.step)
    store.log_event(run_id, f"{RESUMED} {trainer.step} (epoch {trainer.epoch}, "
                            f"batch {trainer.batch_in_epoch} of that epoch)")
