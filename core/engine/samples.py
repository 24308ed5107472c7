"""Samples a run produces while it trains (generated text, image grids, captions, episodes), kept as
files beside its checkpoints so that any page can show how they evolved.

A task that has something to show sets `sample_every` (steps) and defines `samples(model)`, returning
{name: payload} where a payload is text (str, saved as .txt), a PNG image (bytes, .png) or anything
JSON-able (.json). Files are named `<step>-<name>.<ext>` under `run_dir/samples/`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from core.engine.callbacks import Callback

SAMPLES_DIR = "samples"
_NAME = re.compile(r"^(\d{8})-([A-Za-z0-9_]+)\.(txt|png|json)$")


@dataclass(frozen=True)
class Sample:
    step: int
    name: str
    path: Path

    def load(self):
        if self.path.suffix == ".png":
            return self.path.read_bytes()
        text = self.path.read_text(encoding="utf-8")
        return json.loads(text) if self.path.suffix == ".json" else text


def write_samples(folder: Path, step: int, samples: dict) -> list[Path]:
    folder = Path(folder) / SAMPLES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, payload in samples.items():
        if not re.fullmatch(r"[A-Za-z0-9_]+", name):
            raise ValueError(f"sample name '{name}' must be letters, digits and underscores")
        if isinstance(payload, bytes):
            ext, data = "png", payload
        elif isinstance(payload, str):
            ext, data = "txt", payload.encode("utf-8")
        else:
            ext, data = "json", json.dumps(payload).encode("utf-8")
        path = folder / f"{step:08d}-{name}.{ext}"
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)  # a reader never sees half a file
        written.append(path)
    return written


def list_samples(folder: Path, name: str | None = None) -> list[Sample]:
    """Every sample of a run folder (optionally one name), oldest first."""
    folder = Path(folder) / SAMPLES_DIR
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _NAME.match(path.name)
        if match and (name is None or match.group(2) == name):
            found.append(Sample(int(match.group(1)), match.group(2), path))
    return sorted(found, key=lambda s: (s.step, s.name))


def latest_samples(folder: Path) -> dict[str, Sample]:
    latest: dict[str, Sample] = {}
    for sample in list_samples(folder):
        latest[sample.name] = sample  # sorted by step, so the last one wins
    return latest


def drop_samples_after(folder: Path, step: int) -> None:
    """A resumed run replays steps after its checkpoint: forget what those steps produced before."""
    for sample in list_samples(folder):
        if sample.step > step:
            sample.path.unlink(missing_ok=True)


class SampleLogger(Callback):
    """Calls the task's `samples(model)` at the start, every `task.sample_every` steps and at the end."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def _record(self, trainer) -> None:
        task = trainer.task
        if not getattr(task, "sample_every", 0) or not hasattr(task, "samples"):
            return
        model = trainer.model
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                samples = task.samples(model)
        finally:
            model.train(was_training)
        if samples:
            write_samples(self.folder, trainer.step, samples)

    def on_fit_start(self, trainer):
        if trainer.step == 0:
            self._record(trainer)

    def on_train_batch_end(self, trainer):
        every = getattr(trainer.task, "sample_every", 0)
        if every and trainer.step % every == 0:
            self._record(trainer)

    def on_fit_end(self, trainer):
        every = getattr(trainer.task, "sample_every", 0)
        if every and trainer.step % every:
            self._record(trainer)
