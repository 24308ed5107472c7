"""Runs as TensorBoard event files, so `tensorboard --logdir DIR` opens what the lab recorded (issue 15).

Each run becomes one folder `DIR/<name>-<run id>/` holding:
- every logged metric row as a scalar (tag = the metric key, e.g. `val_acc`; step and wall time as logged);
- the samples it kept while training (core.engine.samples): PNG grids as images, text as text, under
  `samples/<name>`;
- its configuration as hyperparameters of TensorBoard's HParams plugin (the config flattened to dotted keys,
  e.g. `optim.lr`), with the run's best watched metric and its epochs as the HParams metrics.

Written with torch.utils.tensorboard's SummaryWriter (the tensorboard package's event-file format). TensorBoard
keeps scalars as float32, so a value reads back as float32(value).
"""

from __future__ import annotations

import io
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Iterable

from core.errors import LabError
from core.paths import run_dir

HPARAM_METRIC_PREFIX = "hparams/"  # the HParams metrics' tags, apart from the logged curves


def write_tensorboard(store, run_ids: Iterable[str], out: str | Path) -> list[Path]:
    """Write each run's event files under `out` (created if needed); returns the run folders, in the order given.
    An unknown run id raises RunNotFound before anything is written."""
    from core.analysis.export import checked_ids
    ids = checked_ids(store, run_ids)
    writer_class = _summary_writer()
    out = Path(out).expanduser()
    runs = store.get_runs(ids)
    metrics = store.metrics(ids)
    folders = []
    for run_id in ids:
        run = runs[run_id]
        folder = out / folder_name(run.name, run_id)
        writer = writer_class(log_dir=str(folder))
        try:
            rows = metrics[metrics["run_id"] == run_id]
            for step, key, value, when in zip(rows["step"], rows["key"], rows["value"], rows["time"]):
                writer.add_scalar(str(key), float(value), global_step=int(step), walltime=float(when))
            _write_samples(writer, run_id)
            hparams, results = hyperparameters(run.config or {}), hparam_metrics(run.summary or {})
            writer.add_hparams(hparams, results, run_name=".")  # "." keeps them in the run's own folder
        finally:
            writer.close()
        folders.append(folder)
    return folders


def tensorboard_zip(store, run_ids: Iterable[str]) -> bytes:
    """The same folders as a zip (what the Runs page downloads): unpack it and point `tensorboard --logdir` at it."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_tensorboard(store, run_ids, root)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    archive.write(path, str(path.relative_to(root)))
        return buffer.getvalue()


def folder_name(name: str, run_id: str) -> str:
    """A run's folder name: its name made safe for any file system, then its id (names need not be unique)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", str(name)).strip("-.")[:60]
    return f"{safe}-{run_id}" if safe else run_id


def hyperparameters(config: dict) -> dict:
    """The config flattened to dotted keys (core.analysis.configs.flatten) with values HParams takes: numbers,
    booleans and text as they are; anything else as the Runs page shows it ({"optim.lr": 0.001, "data.path": "None",
    "model.lora_targets": "[]"})."""
    from core.analysis.configs import display_value, flatten
    return {key: value if isinstance(value, (bool, int, float, str)) else display_value(value)
            for key, value in flatten(config).items()}


def hparam_metrics(summary: dict) -> dict:
    """What the HParams table compares runs by: the best watched metric and the epochs done, when recorded."""
    from core.store.records import best_of, watched_metric
    found = {}
    best = best_of(summary)
    if isinstance(best, (int, float)):
        found[f"{HPARAM_METRIC_PREFIX}best_{watched_metric(summary)}"] = float(best)
    if isinstance(summary.get("epochs_done"), (int, float)):
        found[f"{HPARAM_METRIC_PREFIX}epochs_done"] = float(summary["epochs_done"])
    return found


def _write_samples(writer, run_id: str) -> None:
    import numpy as np
    from PIL import Image

    from core.engine.samples import list_samples
    for sample in list_samples(run_dir(run_id)):
        tag = f"samples/{sample.name}"
        if sample.path.suffix == ".png":
            pixels = np.asarray(Image.open(sample.path).convert("RGB"))  # (H, W, 3) uint8
            writer.add_image(tag, pixels, global_step=sample.step, dataformats="HWC")
        elif sample.path.suffix == ".txt":
            writer.add_text(tag, sample.path.read_text(encoding="utf-8"), global_step=sample.step)


def _summary_writer():
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise LabError("writing TensorBoard files needs the tensorboard package: pip install -r requirements.txt") \
            from None
    return SummaryWriter
