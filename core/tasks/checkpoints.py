"""The one checkpoint-to-model loader: any run's model, whatever its family, rebuilt by its task
(`TaskSpec.build_model`) from best.pt or last.pt (weights_only), cached until the file changes."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch

from core.engine.checkpoint import BEST, LAST, load_checkpoint
from core.errors import CheckpointError, InputError, LabError
from core.paths import run_dir


CHECKPOINT_FILES = {"best": BEST, "last": LAST}


@dataclass
class RunModel:
    model: torch.nn.Module  # in eval mode, on the requested device
    config: object  # the run's RunConfig
    metadata: dict  # what the task saved with the checkpoint (vocabulary, classes, image size...)
    run_id: str
    which: str
    epoch: int | None
    best_value: float | None = None  # the watched metric when this checkpoint was saved (best.pt)

    @property
    def task(self) -> str:
        return self.config.task

    def require(self, task: str) -> None:
        """An InputError unless this run was trained for `task` (a GAN grid asked of an autoencoder, say)."""
        if self.task != task:
            raise InputError(f"run {self.run_id} was trained for the task '{self.task}'; this needs a '{task}' run")


def checkpoint_path(run_id: str, which: str = "best") -> Path:
    if which not in CHECKPOINT_FILES:
        raise LabError(f"checkpoint '{which}' is not one of: {', '.join(CHECKPOINT_FILES)}")
    return run_dir(run_id) / CHECKPOINT_FILES[which]


def inference_device(device) -> torch.device:
    if isinstance(device, str) and device == "auto":
        from core.engine.devices import resolve_device
        return resolve_device("auto")
    return torch.device(device)


def existing_checkpoint(run_id: str, which: str = "best") -> tuple[Path, int]:
    """The run's best.pt or last.pt and its mtime (part of the cache keys), or a CheckpointError that says
    what to wait for."""
    from core.store import RunStore

    path = checkpoint_path(run_id, which)
    run = RunStore().get_run(run_id)  # RunNotFound with a clear message for unknown ids
    try:
        return path, path.stat().st_mtime_ns
    except FileNotFoundError:
        if which == "best":
            raise CheckpointError(f"run {run_id} has no best.pt yet; wait for its first epoch or pick last") from None
        raise CheckpointError(f"run {run_id} ({run.status}) has no last.pt: it saved no checkpoint; "
                              "wait for its first epoch to end") from None


def load_weights(model: torch.nn.Module, payload: dict, path: str, run_id: str, model_name: str) -> None:
    """Load the checkpoint's weights, or a CheckpointError naming the file, the run and the model."""
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"{Path(path).name} of run {run_id} does not fit its model "
                              f"'{model_name}': {str(exc).splitlines()[0]}") from None


def load_run_model(run_id: str, which: str = "best", device="cpu") -> RunModel:
    """The run's model rebuilt by its task and loaded from the checkpoint; cached until the file changes."""
    path, mtime_ns = existing_checkpoint(run_id, which)
    return _cached(str(path), run_id, which, mtime_ns, str(inference_device(device)))


@functools.lru_cache(maxsize=4)
def _cached(path: str, run_id: str, which: str, mtime_ns: int, device: str) -> RunModel:
    from core.config import RunConfig
    from core.tasks import task_spec

    payload = load_checkpoint(Path(path), map_location="cpu")
    try:
        config = RunConfig.from_dict(payload["config"])
    except (KeyError, TypeError, LabError) as exc:
        raise CheckpointError(f"{Path(path).name} of run {run_id} lacks a valid config ({exc})") from None
    metadata = {k: v for k, v in payload.items()
                if k not in ("model", "optimizer", "scheduler", "scaler", "rng", "config")}
    model = task_spec(config.task).build_model(config, metadata)
    load_weights(model, payload, path, run_id, config.model.name)
    model.to(torch.device(device)).eval()
    return RunModel(model=model, config=config, metadata=metadata, run_id=run_id, which=which,
                    epoch=payload.get("epoch"), best_value=payload.get("best_value"))


def clear_cache() -> None:
    _cached.cache_clear()
