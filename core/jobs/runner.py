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
    """Wait for a device slot (`slot`: 'cpu', or the GPUs it may take, 'cuda0,cuda1'; in the line at `ticket`),
    train, and record the outcome; returns the final status. Torch is imported only once the slot is held, so a
    queued worker stays a small process. A run on several devices is trained by torchrun's processes, which this
    one starts and watches (see execute_rank)."""
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
        count = slots_needed(config, slot)
        with device_slot(slot, count=count, ticket=ticket, while_waiting=lambda: not stop_event.is_set()) as held:
            if not held or store.get_run(run_id).cancel_requested:  # cancelled while queued
                store.finish(run_id, "cancelled")
                return "cancelled"
            gpus = claim_gpus(held)
            if config.devices > 1:
                from core.engine.devices import library_versions
                store.mark_running(run_id, pid=os.getpid(), device=_devices_text(config, gpus),
                                   versions=library_versions())
                fitting = True
                return _run_ranks(run_id, config, resume=resume, gpus=gpus, stop_event=stop_event, store=store)
            from core.engine.devices import describe, resolve_device
            from core.engine.devices import library_versions
            from core.errors import Cancelled
            from core.jobs.assemble import assemble
            device = _held_device(resolve_device(config.device), gpus)
            store.mark_running(run_id, pid=os.getpid(), device=describe(device), versions=library_versions())
            callbacks = _callbacks(store, run_id, folder, config, heartbeat, progress)
            threads = os.environ.get("LAB_CPU_THREADS", "")
            if device.type == "cpu" and threads.isdigit() and int(threads) > 0:
                import torch  # on a busy small machine fewer threads than cores avoids oversubscription
                torch.set_num_threads(int(threads))
            trainer = assemble(config, device=device, callbacks=callbacks, stop_event=stop_event, initialise=not resume)
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


def _callbacks(store, run_id: str, folder, config, heartbeat, progress: bool) -> list:
    """The callbacks that write (the leader's): GPU statistics, store logger, live control, checkpoints, samples."""
    from core.engine.callbacks import Checkpointer, EarlyStopping, ProgressBar, StoreLogger
    from core.engine.control import LiveControl
    from core.engine.device_stats import DeviceStats
    from core.engine.samples import SampleLogger
    # DeviceStats before the store logger: it adds the GPU's memory to the log row the logger writes (CUDA only);
    # LiveControl before the checkpointer: a stop or an epoch count applied at an epoch's end is saved with it
    callbacks = [DeviceStats(), StoreLogger(store, run_id), LiveControl(store, run_id, heartbeat.controls_waiting),
                 Checkpointer(folder), SampleLogger(folder)]
    if config.early_stopping_patience:
        callbacks.append(EarlyStopping(config.early_stopping_patience))
    if progress:
        callbacks.append(ProgressBar())
    return callbacks


def slots_needed(config, slot: str) -> int:
    """GPUs a run holds: one per device; a run of several CPU processes shares the one CPU slot."""
    return config.devices if slot.startswith("cuda") else 1


def claim_gpus(held) -> list[int]:
    """The physical indices of the GPU slots held ('cuda2' -> 2). A worker that has not imported torch yet
    sees only those (CUDA_VISIBLE_DEVICES), so a model can never land on another job's GPU."""
    import sys
    gpus = [int(name[4:]) for name in held if isinstance(name, str) and name.startswith("cuda")]
    if gpus and "torch" not in sys.modules:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        physical = visible.split(",") if visible else [str(i) for i in range(max(gpus) + 1)]
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(physical[i] for i in gpus)
        return list(range(len(gpus)))  # renumbered from 0 in this process
    return gpus


def _held_device(device, gpus: list[int]):
    """The device this process trains on: the GPU slot it holds, whatever index the config named."""
    if device.type != "cuda" or not gpus:
        return device
    import torch
    return torch.device("cuda", gpus[0])


def _devices_text(config, gpus: list[int]) -> str:
    if gpus:
        return f"{config.devices} × cuda ({', '.join(os.environ.get('CUDA_VISIBLE_DEVICES', '').split(',')[:len(gpus)])})"
    return f"{config.devices} × cpu processes (gloo)"


def _run_ranks(run_id: str, config, *, resume: bool, gpus: list[int], stop_event, store) -> str:
    """Train through torchrun: one process per device on this machine (`python -m core.worker RUN_ID --rank`),
    rank 0 writing. This process keeps the run's heartbeat, and its slots, until they exit."""
    import subprocess
    import sys
    import time
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={config.devices}",
               "-m", "core.worker", run_id, "--rank"] + (["--resume"] if resume else [])
    from core.jobs import PROJECT_ROOT
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS") or str(_threads_per_rank(config)),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, env=env, cwd=PROJECT_ROOT,
                               preexec_fn=_end_with_parent)
    forwarded = False
    while process.poll() is None:
        if stop_event.is_set() and not forwarded and not store.get_run(run_id).cancel_requested:
            process.send_signal(signal.SIGTERM)  # a signal to this worker (not a cancel, which rank 0 reads itself)
            forwarded = True
        time.sleep(0.5)
    run = store.get_run(run_id)
    if run.status in ("queued", "running"):
        store.finish(run_id, "failed", error=f"the {config.devices} training processes exited with code "
                                              f"{process.returncode} before the run ended; see log.txt")
    return store.get_run(run_id).status


def _threads_per_rank(config) -> int:
    """CPU ranks share the cores; GPU ranks need few threads of their own."""
    cores = os.cpu_count() or 1
    return max(1, cores // config.devices) if config.device == "cpu" else 1


def _end_with_parent() -> None:
    """In torchrun's process, before it starts: ask the kernel for a SIGTERM when this worker dies (even by
    kill -9), so torchrun then stops its ranks and none trains on without a heartbeat or a slot."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass  # not Linux: the ranks stop when their collective fails instead


def execute_rank(run_id: str, *, resume: bool = False) -> str:
    """One of torchrun's processes (core.worker --rank): join the group, train this rank's shard. Rank 0 has the
    callbacks that write and its own heartbeat (for cancel and live control); the others follow it through
    core.engine.distributed.RankSync. Returns how this process ended: completed, cancelled or failed."""
    from core.config import RunConfig
    from core.engine import distributed
    from core.engine.devices import resolve_device
    from core.errors import Cancelled
    from core.jobs.assemble import assemble
    from core.store import RunStore
    from core.world import current_world

    world = current_world()
    store = RunStore()
    config = RunConfig.from_dict(store.get_run(run_id).config)
    folder = run_dir(run_id)
    requested, agreed = threading.Event(), threading.Event()
    previous_handlers = _install_signal_handlers(requested if world.leader else threading.Event())
    heartbeat = Heartbeat(run_id, requested) if world.leader else None
    try:
        device = distributed.start(world, resolve_device(config.device))
        callbacks = _callbacks(store, run_id, folder, config, heartbeat, False) if heartbeat else []
        if heartbeat:
            heartbeat.start()
        callbacks.append(distributed.RankSync(world, requested, agreed))
        trainer = assemble(config, device=device, callbacks=callbacks, stop_event=agreed, world=world,
                           initialise=not resume)
        if resume:
            if world.leader:
                _restore(trainer, store, run_id, folder)
            elif (folder / LAST).exists():
                from core.engine.checkpoint import load_checkpoint
                trainer.load_state_dict(load_checkpoint(folder / LAST, map_location=trainer.device))
        try:
            trainer.fit()
        except Cancelled:
            return "cancelled"
        return "completed"
    except Exception as exc:
        _print_unexpected(exc)
        if world.leader and store.get_run(run_id).status in ("queued", "running"):
            store.finish(run_id, "failed", error=describe_exception(exc))
        return "failed"
    finally:
        if heartbeat:
            heartbeat.stop()
        distributed.stop()
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)


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
