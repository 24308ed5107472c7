"""Load any run's model for inference, whatever its task, from best.pt or last.pt (weights_only)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch

from core.engine.checkpoint import load_checkpoint
from core.errors import CheckpointError, LabError
from core.inference.predictor import _resolve, existing_checkpoint, load_weights


@dataclass
class RunModel:
    model: torch.nn.Module  # in eval mode, on the requested device
    config: object  # the run's RunConfig
    metadata: dict  # what the task saved with the checkpoint (vocabulary, classes, image size...)
    run_id: str
    which: str
    epoch: int | None

    @property
    def task(self) -> str:
        return self.config.task


def load_run_model(run_id: str, which: str = "best", device="cpu") -> RunModel:
    """The run's model rebuilt by its task and loaded from the checkpoint; cached until the file changes."""
    path, mtime_ns = existing_checkpoint(run_id, which)
    return _cached(str(path), run_id, which, mtime_ns, str(_resolve(device)))


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
                    epoch=payload.get("epoch"))


def clear_cache() -> None:
    _cached.cache_clear()
