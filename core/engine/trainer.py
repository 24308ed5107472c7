"""The training loop. It knows no model and no data set: the task says what a step computes,
the config says how to run it (device, precision, schedule), callbacks do everything else."""

from __future__ import annotations

import math
import time

import torch

from core.engine.callbacks import is_better
from core.engine.checkpoint import restore_rng_state, rng_state
from core.engine.devices import autocast_context, use_fast_kernels
from core.engine.optim import build_optimizer, build_scheduler
from core.errors import Cancelled, TrainingError
from core.paths import storage_error


class Trainer:
    def __init__(self, *, config, model, task, train_batches, val_batches, device, callbacks=(),
                 stop_event=None, metadata: dict | None = None, world=None):
        from core.world import World
        self.config, self.task, self.device = config, task, device
        self.world = world or World()
        self.train_batches, self.val_batches = train_batches, val_batches
        self.callbacks = list(callbacks)
        self.stop_event = stop_event
        self.metadata = metadata or {}
        self.model = model.to(device)
        use_fast_kernels(device)
        # channels_last for 2-D convolutions; a model with 3-D ones (video) gets its 5-D form, channels_last_3d
        self.memory_format = None
        if config.channels_last:
            video = any(p.dim() == 5 for p in self.model.parameters())
            self.memory_format = torch.channels_last_3d if video else torch.channels_last
            self.model = self.model.to(memory_format=self.memory_format)
        # the compiled and DDP wrappers share parameters with self.model, whose state dict stays un-prefixed;
        # evaluation (on the leader alone) skips DDP, whose forward could wait for the other ranks
        # compiled on a GPU only: on the CPU the compile time rarely pays back, and needs a C++ compiler
        compile_model = config.compile and device.type == "cuda"
        self.eval_model = torch.compile(self.model) if compile_model else self.model
        self.forward_model = self.eval_model
        if self.world.size > 1:
            from core.engine.distributed import wrap
            wrapped = wrap(self.model, device)
            self.forward_model = torch.compile(wrapped) if compile_model else wrapped
        self.optimizer = build_optimizer(self.model, config.optim)
        self.steps_per_epoch = len(train_batches)
        self.scheduler = build_scheduler(self.optimizer, config.optim, self.steps_per_epoch)
        self.autocast = autocast_context(device, config.amp)
        self.scaler = torch.amp.GradScaler("cuda", enabled=config.amp == "fp16" and device.type == "cuda")
        # the parameter sets optim.grad_clip bounds one by one (a GAN's two players); else all together
        groups = task.clip_groups(self.model) if hasattr(task, "clip_groups") else [list(self.model.parameters())]
        self.clip_groups = [[p for p in group if p.requires_grad] for group in groups]
        self.step = 0  # optimiser steps done, over the whole run
        self.epoch = 0  # epochs completed
        self.batch_in_epoch = 0  # batches of the current epoch already done (non-zero after a mid-epoch resume)
        self.best_value: float | None = None
        self.best_epoch = 0
        self.should_stop = False
        self.stop_reason = ""
        self.last_metrics: dict[str, float] = {}
        self.lr = config.optim.lr
        self.saved_step: int | None = None  # the step of the newest checkpoint on disk: where a resume continues

    # ---- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                "step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                "best_value": self.best_value, "best_epoch": self.best_epoch, "rng": rng_state(),
                "config": self.config.to_dict(), **self.metadata}

    def load_state_dict(self, payload: dict) -> None:
        self.model.load_state_dict(payload["model"])
        if len(payload["optimizer"]["param_groups"]) != len(self.optimizer.param_groups):
            # saved before biases and norms got their own no-decay group: resume with the old layout
            self.optimizer = build_optimizer(self.model, self.config.optim, split=False)
            self.scheduler = build_scheduler(self.optimizer, self.config.optim, self.steps_per_epoch)
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        self.scaler.load_state_dict(payload["scaler"])
        self.step, self.epoch, self.batch_in_epoch = payload["step"], payload["epoch"], payload["batch_in_epoch"]
        self.best_value, self.best_epoch = payload["best_value"], payload["best_epoch"]
        self.saved_step = self.step
        restore_rng_state(payload["rng"])
        if not math.isclose(self.scheduler.base_lrs[0], self.config.optim.lr, rel_tol=1e-9):
            self.set_base_lr(self.config.optim.lr)  # changed while the run trained, after this checkpoint

    # ---- live control (see core.engine.control) ----------------------------------------------
    def set_epochs(self, epochs: int) -> None:
        """Train `epochs` in all. A schedule that depends on the run's length (cosine, one-cycle) stretches
        or shrinks with it from the current step on."""
        self.config.optim.epochs = int(epochs)

    def set_base_lr(self, lr: float) -> None:
        """Scale the schedule so that its base (peak) rate is `lr` from the next step on; the schedule's
        shape (warm-up, decay) is kept."""
        ratio = lr / self.scheduler.base_lrs[0]
        self.scheduler.base_lrs = [base * ratio for base in self.scheduler.base_lrs]
        for group in self.optimizer.param_groups:
            group["lr"] *= ratio
            if "initial_lr" in group:  # what a rebuilt scheduler would start from
                group["initial_lr"] *= ratio
        self.config.optim.lr = float(lr)  # self.lr stays the rate the last step used: it is what gets logged

    def summary(self) -> dict:
        metric = self.task.best_metric
        return {f"best_{metric}": self.best_value, "best_metric": metric, "best_epoch": self.best_epoch,
                "epochs_done": self.epoch, "steps": self.step, "steps_per_epoch": self.steps_per_epoch,
                "last": self.last_metrics, "stop_reason": self.stop_reason, "world_size": self.world.size,
                **{k: v for k, v in self.metadata.items() if k in ("params", "trainable_params", "finetune")}}

    # ---- loop ------------------------------------------------------------------------------
    def _call(self, hook: str, *args) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)

    def fit(self) -> dict:
        try:
            self._call("on_fit_start")
            while self.epoch < self.config.optim.epochs and not self.should_stop:
                started = time.perf_counter()
                epoch_sums = self._train_epoch()
                metrics = {}
                if epoch_sums:
                    metrics.update({f"epoch_train_{k}": v for k, v in self.task.summarize(epoch_sums).items()})
                metrics.update(self.task.evaluate(self.eval_model, self.val_batches, self.autocast))
                if self.epoch + 1 >= self.config.optim.epochs and hasattr(self.task, "final_metrics"):
                    # the last epoch's extra figures (e.g. accuracy with test-time augmentation)
                    metrics.update(self.task.final_metrics(self.eval_model, self.val_batches, self.autocast))
                metrics["epoch_time_s"] = time.perf_counter() - started
                if self.device.type == "cuda":
                    metrics["gpu_mem_mb"] = torch.cuda.max_memory_allocated(self.device) / 2**20
                self.epoch += 1
                self.batch_in_epoch = 0
                if is_better(metrics.get(self.task.best_metric), self.best_value, self.task.best_mode):
                    self.best_value, self.best_epoch = metrics[self.task.best_metric], self.epoch
                self.last_metrics = metrics
                self._call("on_epoch_end", metrics)
            self._call("on_fit_end")
        except BaseException as exc:
            exc = _explain(exc, self.config)
            self._call("on_exception", exc)
            raise exc from None
        return self.summary()

    def _train_epoch(self) -> dict:
        self.model.train()
        epoch_sums: dict = {}
        window: dict = {}
        window_start = time.perf_counter()
        clip = self.config.optim.grad_clip
        log_every = self.config.log_every
        for batch in self.train_batches.epoch(self.epoch, start_batch=self.batch_in_epoch):
            if self.memory_format is not None and isinstance(batch, tuple) and getattr(batch[0], "ndim", 0) == (
                    5 if self.memory_format is torch.channels_last_3d else 4):
                batch = (batch[0].contiguous(memory_format=self.memory_format), *batch[1:])
            with self.autocast():
                loss, sums = self.task.training_step(self.forward_model, batch)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if clip:
                self.scaler.unscale_(self.optimizer)
                for group in self.clip_groups:
                    torch.nn.utils.clip_grad_norm_(group, clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.lr = self.optimizer.param_groups[0]["lr"]
            self.scheduler.step()
            self.step += 1
            self.batch_in_epoch += 1
            _accumulate(window, sums)
            self._call("on_train_batch_end")
            if self.step % log_every == 0 or self.batch_in_epoch == self.steps_per_epoch:
                if self.world.size > 1:  # every rank reaches this step: the logged figures are the global batch's
                    from core.engine.distributed import reduce_sums
                    window = reduce_sums(window, self.device)
                summary = self.task.summarize(window)  # synchronises with the device
                elapsed = time.perf_counter() - window_start
                if not math.isfinite(summary["loss"]):
                    raise TrainingError(
                        f"the training loss became {summary['loss']} at step {self.step}: training diverged. "
                        f"Try a lower learning rate (now {self.lr:g}), gradient clipping (optim.grad_clip=1.0)"
                        + (" or amp off" if self.config.amp != "off" else ""))
                metrics = {f"train_{k}": v for k, v in summary.items()}
                metrics.update(lr=self.lr, samples_per_s=float(window["count"]) / max(elapsed, 1e-9))
                self._call("on_train_log", metrics)
                _accumulate(epoch_sums, window)
                window, window_start = {}, time.perf_counter()
            if self.stop_event is not None and self.stop_event.is_set():
                self._call("on_cancel")
                raise Cancelled(f"cancelled at step {self.step}")
        return epoch_sums


def _accumulate(total: dict, sums: dict) -> None:
    for key, value in sums.items():
        total[key] = total[key] + value if key in total else value


def _explain(exc: BaseException, config) -> BaseException:
    """Turn errors a user can act on into messages that say what to do."""
    batch = config.optim.batch_size
    smaller = f"try optim.batch_size={max(1, batch // 2)}"
    if isinstance(exc, torch.OutOfMemoryError):
        return TrainingError(f"the GPU ran out of memory with batch size {batch}; "
                             f"{smaller}, amp bf16 or a smaller image size")
    if isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError) and _cpu_allocator_failed(str(exc))):
        return TrainingError(f"the computer ran out of memory (RAM) with batch size {batch}; "
                             f"{smaller} or a smaller image size, or close other runs")
    translated = storage_error(exc, then="resume the run: it continues from its last checkpoint")
    return translated


def _cpu_allocator_failed(message: str) -> bool:
    # torch's CPU allocator: "DefaultCPUAllocator: can't allocate memory: you tried to allocate N bytes"
    return "can't allocate memory" in message or "not enough memory" in message
