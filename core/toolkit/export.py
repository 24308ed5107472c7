"""Export a finished run's model for use outside the lab: ONNX, a `torch.export` program, safetensors weights with
a model card, or (image classifiers) a zip that classifies pictures with ONNX Runtime alone (no lab, no PyTorch).

What is exported, and on what it is checked, is the family's to say (its "export" entry point, an ExportSpec of
core.tasks.export_spec): an image classifier or a character language model whole, a GAN's generator. Every export
is checked before it is kept: the exported model (or the reloaded weights) runs on a batch of the run's own
validation inputs, prepared as training prepared them, and its outputs must match PyTorch's within TOLERANCE, with
the same top class everywhere for models that score classes (a classifier's, a language model's next character). Files are written into a
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
TOLERANCE = 1e-4  # largest allowed |output difference| between the export and PyTorch
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
    max_abs_diff: float  # largest |output difference| from PyTorch on the checked inputs
    top1_agreement: float | None  # fraction with the same top class (1.0 = all); None for outputs that are no scores
    images: int  # validation inputs checked (images, text windows, noise vectors)
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
    unknown run or format, a run still training, a run without a checkpoint, a family without an export or without
    this format, and an export that cannot be made or does not match."""
    from core.tasks import task_spec
    from core.tasks.checkpoints import checkpoint_path, existing_checkpoint, load_run_model

    if fmt not in FORMATS:
        raise LabError(f"'{fmt}' is not an export format; choose one of: {', '.join(FORMATS)}")
    checkpoint_path(run_id, which)  # a clear message for a checkpoint other than best or last
    run = exportable_run(run_id)
    existing_checkpoint(run_id, which)  # CheckpointError: none yet
    run_model = load_run_model(run_id, which, device="cpu")
    spec = export_spec(run_model)
    if fmt not in spec.formats:
        raise LabError(f"a {task_spec(run.task).title.lower()} run cannot be exported as '{fmt}'; choose one of: "
                       + ", ".join(spec.formats))
    model = exported_copy(spec.part)
    batch, inputs, note = spec.inputs(formats.CHECK_INPUTS)
    default = run_dir(run_id) / "exports"
    dest = _destination(out, default, FILE_NAMES[fmt].format(which=which))
    with _staging(dest.parent) as stage:
        made = formats.WRITERS[fmt](model, batch, stage, dest.name, run, run_model, which, spec)
        if not spec.argmax_check:
            made.top1_agreement = None
        if made.max_abs_diff > TOLERANCE or (made.top1_agreement is not None and made.top1_agreement < 1.0):
            agreement = (f", top-1 agreement {made.top1_agreement:.1%} (100% needed)"
                         if made.top1_agreement is not None else "")
            raise LabError(
                f"the {TITLES[fmt]} export of run {run_id} does not match PyTorch on {len(batch)} "
                f"{'validation' if inputs == 'validation' else 'random'} inputs: largest output difference "
                f"{made.max_abs_diff:.3g} (at most {TOLERANCE:g} allowed){agreement}; nothing was written")
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
    if run.task not in exportable_tasks():
        families = ", ".join(task_spec(name).title.lower() for name in exportable_tasks())
        raise LabError(f"run {run_id} is a {task_spec(run.task).title.lower()} run; only runs of these families "
                       f"can be exported for now: {families}")
    return run


def exportable_tasks() -> list[str]:
    """The families that declare what exporting their runs means (the "export" entry point)."""
    from core.tasks import list_tasks, task_spec
    return [name for name in list_tasks() if "export" in task_spec(name).entry_points]


def export_formats(run_id: str) -> tuple[str, ...]:
    """The formats the run's family offers (all of FORMATS for an image classifier; no bundle for the others)."""
    from core.tasks.checkpoints import load_run_model
    exportable_run(run_id)  # a clear message for a run that cannot be exported
    which = "best" if (run_dir(run_id) / "best.pt").is_file() else "last"
    return export_spec(load_run_model(run_id, which, device="cpu")).formats


def export_spec(run_model):
    """The run's family's ExportSpec (core.tasks.export_spec) for this checkpoint."""
    from core.tasks import task_spec
    return task_spec(run_model.config.task).entry("export")(run_model)


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

