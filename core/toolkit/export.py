"""Export a finished run's model for use outside the lab: ONNX, a `torch.export` program, safetensors weights with
a model card, or a zip that classifies pictures with ONNX Runtime alone (no lab, no PyTorch).

Every export is checked before it is kept: the exported model (or the reloaded weights) runs on a batch of the
run's own validation images, prepared as training prepared them (core/tasks/classification/evaluation.py), and its
logits must match PyTorch's within TOLERANCE with the same top-1 class for every image. Files are written into a
temporary folder beside their destination and renamed only once they pass, so a failed export leaves nothing.
A run's exports live in LAB_HOME/runs/<id>/exports/, each with a JSON sidecar that `list_exports` reads.

    result = export_run(run_id, "onnx")      # -> ExportResult(path=.../exports/best.onnx, max_abs_diff=..., ...)

TorchScript (`torch.jit.trace` / `script`) is deprecated in torch 2.14, so the "torchscript" format saves a
`torch.export` program (.pt2, `torch.export.save`; load it with `torch.export.load(path).module()`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from core.errors import LabError
from core.paths import atomic_write, run_dir, storage_error
from core.toolkit import formats

FORMATS = ("onnx", "torchscript", "safetensors", "bundle")
EXPORTABLE_TASKS = ("classification",)  # families whose models export: one picture in, one score per class out
TOLERANCE = 1e-4  # largest allowed |logit difference| between the export and PyTorch
SIDECAR = ".export.json"  # exports/<file><SIDECAR>: what list_exports reads
FILE_NAMES = {"onnx": "{which}.onnx", "torchscript": "{which}.pt2", "safetensors": "{which}.safetensors",
              "bundle": "{which}-bundle.zip"}
TITLES = {"onnx": "ONNX", "torchscript": "torch.export", "safetensors": "safetensors", "bundle": "bundle"}


@dataclass
class ExportResult:
    run_id: str
    format: str  # one of FORMATS
    which: str  # "best" or "last" checkpoint
    path: str  # the exported file
    size_bytes: int
    exporter: str  # what wrote it, e.g. "torch.onnx.export (dynamo), opset 18"
    checked_with: str  # what ran it for the check, e.g. "onnxruntime 1.32.0 (CPU)"
    max_abs_diff: float  # largest |logit difference| from PyTorch on the checked images
    top1_agreement: float  # fraction of the checked images with the same top-1 class (1.0 = all)
    images: int  # validation images checked
    inputs: str  # "validation" (the run's own images) or "random" (its data set could not be read)
    epoch: int | None = None
    created_at: float = 0.0
    files: list[str] = field(default_factory=list)  # files written beside `path` (a model card)
    members: list[str] = field(default_factory=list)  # what a bundle's zip holds
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> ExportResult:
        known = {name: raw[name] for name in cls.__dataclass_fields__ if name in raw}
        return cls(**known)


def export_run(run_id: str, fmt: str, out: str | os.PathLike | None = None, which: str = "best") -> ExportResult:
    """Export the run's best or last checkpoint as `fmt`, checked against PyTorch; written to `out` (a file, or a
    folder for the default name), by default LAB_HOME/runs/<id>/exports/. A LabError, and nothing written, for an
    unknown run or format, a run still training, a run without a checkpoint or of a family without an export, and
    an export that cannot be made or does not match."""
    from core.tasks.checkpoints import checkpoint_path, existing_checkpoint, load_run_model

    if fmt not in FORMATS:
        raise LabError(f"'{fmt}' is not an export format; choose one of: {', '.join(FORMATS)}")
    checkpoint_path(run_id, which)  # a clear message for a checkpoint other than best or last
    run = exportable_run(run_id)
    existing_checkpoint(run_id, which)  # CheckpointError: none yet
    run_model = load_run_model(run_id, which, device="cpu")
    model = exported_copy(run_model.model)
    batch, inputs, note = formats.check_batch(run_model)
    default = run_dir(run_id) / "exports"
    dest = _destination(out, default, FILE_NAMES[fmt].format(which=which))
    with _staging(dest.parent) as stage:
        made = formats.WRITERS[fmt](model, batch, stage, dest.name, run, run_model, which)
        if made.max_abs_diff > TOLERANCE or made.top1_agreement < 1.0:
            raise LabError(
                f"the {TITLES[fmt]} export of run {run_id} does not match PyTorch on {len(batch)} "
                f"{'validation' if inputs == 'validation' else 'random'} images: largest logit difference "
                f"{made.max_abs_diff:.3g} (at most {TOLERANCE:g} allowed), top-1 agreement {made.top1_agreement:.1%} "
                f"(100% needed); nothing was written")
        for name in [dest.name, *made.beside]:
            os.replace(stage / name, dest.parent / name)
    result = ExportResult(run_id=run_id, format=fmt, which=which, path=str(dest), size_bytes=dest.stat().st_size,
                          exporter=made.exporter, checked_with=made.checked_with, max_abs_diff=made.max_abs_diff,
                          top1_agreement=made.top1_agreement, images=len(batch), inputs=inputs,
                          epoch=run_model.epoch, created_at=time.time(),
                          files=[str(dest.parent / name) for name in made.beside], members=made.members,
                          note=note)
    if dest.parent == default:
        payload = json.dumps(result.to_dict(), indent=2).encode()
        atomic_write(default / (dest.name + SIDECAR), lambda handle: handle.write(payload))
    return result


def list_exports(run_id: str) -> list[ExportResult]:
    """The run's earlier exports (LAB_HOME/runs/<id>/exports), newest first; a sidecar whose file is gone, or
    that cannot be read, is left out."""
    folder = run_dir(run_id) / "exports"
    found = []
    for sidecar in folder.glob("*" + SIDECAR) if folder.is_dir() else []:
        try:
            result = ExportResult.from_dict(json.loads(sidecar.read_text()))
        except (OSError, ValueError, TypeError):
            continue
        path = folder / sidecar.name[:-len(SIDECAR)]  # the folder may have moved with LAB_HOME
        if path.is_file():
            result.path, result.size_bytes = str(path), path.stat().st_size
            result.files = [str(folder / Path(name).name) for name in result.files]
            found.append(result)
    return sorted(found, key=lambda r: r.created_at, reverse=True)


def exportable_run(run_id: str):
    """The store's record of a run that may be exported, or a LabError that says why not."""
    from core.store import ACTIVE_STATUSES, RunStore
    from core.tasks import task_spec

    run = RunStore().get_run(run_id)  # RunNotFound for unknown ids
    if run.status in ACTIVE_STATUSES:
        raise LabError(f"run {run_id} is still {run.status}; export it once it has finished")
    if run.task not in EXPORTABLE_TASKS:
        families = ", ".join(task_spec(name).title.lower() for name in EXPORTABLE_TASKS)
        raise LabError(f"run {run_id} is a {task_spec(run.task).title.lower()} run; only runs of these families "
                       f"can be exported for now: {families}")
    return run


def exported_copy(model):
    """A copy for the exporters to trace: the cached model (shared with Media and evaluation) stays untouched."""
    import copy
    model = copy.deepcopy(model).cpu().eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def _destination(out, default: Path, name: str) -> Path:
    if out is None:
        return default / name
    out = Path(out).expanduser()
    if out.is_dir() or str(out).endswith(os.sep):
        return out.resolve() / name
    if not out.name:
        raise LabError(f"--out {out} names no file")
    return out.resolve()


@contextmanager
def _staging(folder: Path):
    """A temporary folder inside `folder` (created if needed), removed afterwards with anything left in it; a
    `folder` this made is removed too when nothing reached it."""
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(dir=folder, prefix=".export-"))
    except OSError as exc:
        raise storage_error(exc) from None
    try:
        yield stage
    except OSError as exc:
        translated = storage_error(exc)
        raise (translated if translated is not exc else exc) from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if created:
            try:
                folder.rmdir()  # only when empty: a failed first export leaves no exports/ folder behind
            except OSError:
                pass

