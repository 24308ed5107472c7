"""One run in several processes: the process group, DistributedDataParallel, and keeping the ranks in step.

Every rank runs the same Trainer on its shard of each global batch (core.world). Only rank 0 (the leader)
has the callbacks that write: the store logger, checkpoints, samples, live control, early stopping. Anything
the leader decides that changes the loop (a cancel, a stop, a new epoch count or learning rate) reaches the
other ranks through `RankSync`, a broadcast at the end of every step and every epoch; each rank then acts on
the broadcast value, never on its own signal, so all of them stop at the same step and no collective waits
for a rank that has left.
"""

from __future__ import annotations

import os
import threading
from datetime import timedelta

import torch
import torch.distributed as dist

from core.engine.callbacks import Callback
from core.errors import ConfigError
from core.world import World

TIMEOUT_S = float(os.environ.get("LAB_DIST_TIMEOUT_S", "1800"))  # a rank silent this long fails the run


def check_devices(devices: int, device_name: str) -> None:
    """Refuse, before anything is recorded, a device count this machine cannot run."""
    if devices <= 1:
        return
    if not dist.is_available():
        raise ConfigError(f"devices: this PyTorch build has no torch.distributed, so {devices} processes cannot "
                          "train together here; use devices=1")
    if device_name == "cpu":
        if not dist.is_gloo_available():
            raise ConfigError("devices: training several CPU processes needs the gloo backend, which this "
                              "PyTorch build lacks; use devices=1")
        return
    if device_name == "mps":
        raise ConfigError("devices: Apple's Metal backend trains in one process; use devices=1")
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device_name.startswith("cuda:"):
        raise ConfigError(f"devices: {devices} devices cannot all be {device_name}; set device to cuda "
                          "(the run takes the first free GPUs)")
    if device_name == "cuda" or (device_name == "auto" and gpus):
        if devices > gpus:
            raise ConfigError(f"devices: {devices} GPUs were asked for, but this machine has {gpus}; "
                              f"use devices={max(1, gpus)}")
        return
    raise ConfigError(f"devices: {devices} was asked for, but this machine has no GPU; set device to cpu to "
                      "train in several CPU processes (gloo), or use devices=1")


def start(world: World, device: torch.device) -> torch.device:
    """Join the process group torchrun set up (NCCL on CUDA, gloo on the CPU); returns this rank's device."""
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=timedelta(seconds=TIMEOUT_S))
    return device


def stop() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The model DistributedDataParallel averages gradients for. Buffers (BatchNorm statistics) stay per rank:
    broadcasting them every forward would be one more collective per step, and the leader's are saved."""
    from torch.nn.parallel import DistributedDataParallel
    ids = [device.index] if device.type == "cuda" else None
    # a model that freezes parameters as epochs go (set_epoch: the speedrun's whitening bias) leaves them without
    # gradients from then on; DDP must then look for unused parameters or it waits for their reduction forever
    return DistributedDataParallel(model, device_ids=ids, forward_sync_buffers=False,
                                   find_unused_parameters=hasattr(model, "set_epoch"))


def reduce_sums(sums: dict, device: torch.device) -> dict:
    """The per-rank sums of a log window (loss * count, correct, count, ...) added over all ranks, so the
    logged figures are those of the global batch."""
    keys = sorted(sums)
    values = torch.stack([torch.as_tensor(sums[k], device=device).detach().double() for k in keys])
    dist.all_reduce(values)
    return dict(zip(keys, values.unbind()))


class RankSync(Callback):
    """Last in every rank's callback list: the leader broadcasts (cancel, stop, epochs, learning rate) after
    each step and each epoch, and every rank applies what it receives.

    `requested` is the leader's raw cancel event (the heartbeat or a signal sets it at any moment); `agreed`
    is the event the trainer checks, set on every rank at the same step.
    """

    def __init__(self, world: World, requested: threading.Event | None, agreed: threading.Event):
        self.world, self.requested, self.agreed = world, requested, agreed

    def on_fit_start(self, trainer) -> None:
        self._sync(trainer)  # a stop or epoch count the leader's live control applied before the first step

    def on_train_batch_end(self, trainer) -> None:
        # every log window (a device sync happens there anyway) and at the epoch's last batch: a cancel or a
        # change waits at most log_every steps, and an NCCL run is not synchronised after every step
        if trainer.step % trainer.config.log_every == 0 or trainer.batch_in_epoch == trainer.steps_per_epoch:
            self._sync(trainer)

    def on_epoch_end(self, trainer, metrics) -> None:
        self._sync(trainer)

    def _sync(self, trainer) -> None:
        state = torch.zeros(4, dtype=torch.float64, device=trainer.device)
        if self.world.leader:
            cancel = self.requested is not None and self.requested.is_set()
            state += torch.tensor([float(cancel), float(trainer.should_stop), float(trainer.config.optim.epochs),
                                   float(trainer.config.optim.lr)], dtype=torch.float64, device=trainer.device)
        dist.broadcast(state, src=0)
        cancel, should_stop, epochs, lr = state.tolist()
        if self.world.leader:
            if cancel:
                self.agreed.set()
            return
        if int(epochs) != trainer.config.optim.epochs:
            trainer.set_epochs(int(epochs))
        if lr != trainer.config.optim.lr:
            trainer.set_base_lr(lr)
        if should_stop:
            trainer.should_stop = True
        if cancel:
            self.agreed.set()

