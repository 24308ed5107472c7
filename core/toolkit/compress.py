"""Compress a finished run: int8 quantisation (dynamic or static, core.toolkit.int8) and magnitude pruning
(unstructured or channel, with an optional short fine-tune, core.toolkit.pruning), each variant measured
beside the original model on this machine's CPU:

- size on disk: bytes of the torch.save'd state dict (the weights only, not the checkpoint's optimiser), and
  of the same bytes zlib-compressed, where pruning's zeros show;
- latency per input at batch 1 and batch 32: the median of repeated timed forward passes after warm-up,
  the models taking turns, under torch.inference_mode, with ONE CPU thread (steadier than a shared pool,
  and what a small server process gets); the threads are recorded with every table;
- the family's validation metric (val_acc for image classification), measured as training measured it.

The family supplies its data through its "run_data" entry point (core.tasks.run_data); a family without
one is not supported yet. Every check runs, and every variant is built and measured, before anything is
written. Then, under runs/<id>/compressed/:

  <variant>.pt    the variant's state dict; `load_variant` rebuilds the architecture (the same quantisation
                  transform on the run's float model) and loads it with weights_only=True
  <variant>.json  its row of the table and the recipe that rebuilds it
  report.json     the table (the original and every variant made from the same checkpoint), read back by
                  `compression_report` when the run is reopened; a new checkpoint starts a new table
"""

from __future__ import annotations

import copy
import io
import json
import re
import statistics
import time
import warnings
import zlib
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import torch

from core.errors import CheckpointError, ConfigError, LabError, ModelError
from core.paths import atomic_write, run_dir
from core.toolkit import int8, pruning
from core.toolkit.runs import check_finished, checkpoint_identity

QUANTIZE = ("dynamic", "static")
ORIGINAL = "original"
FOLDER = "compressed"
REPORT = "report.json"
REPORT_VERSION = 1
CALIBRATION_IMAGES = 256  # static int8: training inputs that calibrate the activation observers
LATENCY_BATCHES = (1, 32)
LATENCY_THREADS = 1
WARMUP = 3
MIN_REPEATS = 5
REPEAT_BUDGET_S = 3.0  # seconds per model and batch size: stop repeating then, once MIN_REPEATS are done
MAX_FINETUNE_EPOCHS = 100
VARIANT_NAME = re.compile(r"^[a-z0-9][a-z0-9.+-]{0,80}$")


@dataclass
class CompressionReport:
    run_id: str
    which: str  # the checkpoint every variant was made from: "best" or "last"
    metric: str  # e.g. "val_acc"
    mode: str  # "max" or "min": which way is better
    rows: list[dict]  # the original first; see `measure` for the keys
    requested: str | None = None  # the variant the last compress_run call asked for
    threads: int = LATENCY_THREADS  # CPU threads the latencies were measured with
    note: str = ""  # how the metric was measured
    checkpoint: dict = field(default_factory=dict)  # mtime_ns and size of that checkpoint

    def row(self, variant: str | None = None) -> dict:
        variant = variant or self.requested
        for row in self.rows:
            if row["variant"] == variant:
                return row
        raise LabError(f"run {self.run_id} has no compressed variant '{variant}'; it has: " + ", ".join(self.variants))

    @property
    def variants(self) -> list[str]:
        return [row["variant"] for row in self.rows if row["variant"] != ORIGINAL]

    def summary(self, variant: str | None = None) -> dict:
        """A variant against the original. Ratios are original / variant: 2.0 means half the size, or twice
        as fast; metric_change is after - before (for val_acc, negative means accuracy lost)."""
        before, after = self.row(ORIGINAL), self.row(variant)
        return {"variant": after["variant"], "size_ratio": before["size_bytes"] / after["size_bytes"],
                "zipped_size_ratio": before["zipped_bytes"] / after["zipped_bytes"],
                "latency_ratio": before["latency_ms_b1"] / after["latency_ms_b1"],
                "latency_ratio_b32": before["latency_ms_b32"] / after["latency_ms_b32"],
                "metric": self.metric, "metric_before": before["metric"], "metric_after": after["metric"],
                "metric_change": after["metric"] - before["metric"], "threads": self.threads}

    def table(self):
        import pandas as pd
        return pd.DataFrame(self.rows)

    def comparison(self) -> list[dict]:
        """Each variant (the original first) beside the original: `smaller` is the zipped size ratio (pruning's
        zeros count), `change` the metric's change, in points for an accuracy."""
        original = self.row(ORIGINAL)
        scale = 100.0 if self.metric.endswith("acc") else 1.0
        return [{"variant": row["variant"], "size_bytes": row["size_bytes"], "zipped_bytes": row["zipped_bytes"],
                 "smaller": original["zipped_bytes"] / row["zipped_bytes"], "latency_ms_b1": row["latency_ms_b1"],
                 "latency_ms_b32": row["latency_ms_b32"], "metric": row["metric"],
                 "change": (row["metric"] - original["metric"]) * scale} for row in self.rows]

    def to_dict(self) -> dict:
        return {"version": REPORT_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, raw: dict) -> "CompressionReport":
        return cls(**{k: raw[k] for k in ("run_id", "which", "metric", "mode", "rows")},
                   **{k: raw[k] for k in ("requested", "threads", "note", "checkpoint") if k in raw})


# ---- the one entry point --------------------------------------------------------------------------

def compress_run(run_id: str, *, quantize: str | None = None, prune: float | None = None,
                 prune_kind: str = "unstructured", finetune_epochs: int = 0, which: str = "best",
                 calibration_images: int = CALIBRATION_IMAGES, max_repeats: int = 50) -> CompressionReport:
    """Make, measure and store the variants a request asks for: the pruned model (with `prune`), the
    quantised original (with `quantize`) and, with both, the pruned model quantised (the requested one)."""
    from core.tasks import task_spec
    from core.tasks.checkpoints import checkpoint_path, load_run_model

    check_request(quantize, prune, prune_kind, finetune_epochs)
    checkpoint_path(run_id, which)  # a LabError for a `which` that is neither best nor last
    check_finished(run_id, "compress")
    run_model = load_run_model(run_id, which, device="cpu")  # CheckpointError when there is none
    spec = task_spec(run_model.task)
    if "run_data" not in spec.entry_points:
        raise LabError(f"compression does not support {spec.title.lower()} runs yet (run {run_id} is one); "
                       "it supports: " + ", ".join(supported_tasks()))
    name = run_model.config.model.name
    original = copy.deepcopy(run_model.model).cpu().eval()  # the cached model stays as it is
    if quantize == "dynamic":
        int8.check_dynamic(original, name)
    if quantize == "static":
        int8.check_static(original, name)
    if prune is not None:
        pruning.check_prunable(original, prune_kind, name)
    data = spec.entry("run_data")(run_model)
    if quantize == "static" and data.calibration is None:
        raise ModelError(f"static int8 needs calibration inputs, which {spec.title.lower()} runs do not provide "
                         "here; dynamic int8 does without: use --quantize dynamic")

    made = [(ORIGINAL, original, {})]
    start = original
    if prune is not None:
        pruned = copy.deepcopy(original)
        pruning.apply_pruning(pruned, prune, prune_kind)
        if finetune_epochs:
            pruning.finetune(pruned, data, run_model.config.optim, finetune_epochs)
        pruning.make_permanent(pruned)
        recipe = {"prune": prune, "prune_kind": prune_kind, "finetune_epochs": finetune_epochs}
        made.append((variant_name(None, prune, prune_kind, finetune_epochs), pruned, recipe))
        start = pruned
    example = data.example(1)
    if quantize is not None:
        sources = [(original, {})] + ([(start, made[-1][2])] if start is not original else [])
        for source, recipe in sources:
            if quantize == "dynamic":
                model = int8.quantize_dynamic(source)
            else:
                model = int8.quantize_static(source, example, data.calibration(calibration_images), name)
            recipe = {**recipe, "quantize": quantize}
            made.append((variant_name(quantize, recipe.get("prune"), prune_kind, finetune_epochs), model, recipe))

    inputs = {batch: data.example(batch) for batch in LATENCY_BATCHES}
    models = [model for _, model, _ in made]
    with _threads(LATENCY_THREADS):
        latency = {batch: latencies_ms(models, x, max_repeats) for batch, x in inputs.items()}  # {batch: [ms]}
    measured = [measure(variant, model, recipe, data, {b: ms[i] for b, ms in latency.items()})
                for i, (variant, model, recipe) in enumerate(made)]
    checkpoint = checkpoint_identity(run_id, which)
    report = CompressionReport(run_id=run_id, which=which, metric=data.metric, mode=data.mode,
                               rows=[row for row, _ in measured], requested=made[-1][0], note=data.note,
                               checkpoint=checkpoint)
    engine = int8.int8_engine() if quantize else None
    shared = {"which": which, "checkpoint": checkpoint, "model": name, "engine": engine,
              "input": {"shape": list(example.shape[1:]), "dtype": str(example.dtype).removeprefix("torch.")}}
    files = {row["variant"]: (blob, {**shared, **recipe, "row": row})
             for (row, blob), (_, _, recipe) in zip(measured[1:], made[1:])}
    return _store(report, files)


def variant_name(quantize: str | None, prune: float | None, prune_kind: str, finetune_epochs: int = 0) -> str:
    """e.g. "int8-dynamic", "pruned-channel-50", "pruned-unstructured-50-ft2-int8-static"."""
    parts = []
    if prune is not None:
        parts.append(f"pruned-{prune_kind}-{prune * 100:g}")
        if finetune_epochs:
            parts.append(f"ft{finetune_epochs}")
    if quantize:
        parts.append(f"int8-{quantize}")
    return "-".join(parts)


def check_request(quantize, prune, prune_kind: str, finetune_epochs: int) -> None:
    """A ConfigError naming the first bad argument of a compression request."""
    if quantize is not None and quantize not in QUANTIZE:
        raise ConfigError(f"quantize: '{quantize}' is not one of: {', '.join(QUANTIZE)}")
    if prune is not None:
        if isinstance(prune, bool) or not isinstance(prune, (int, float)) or not 0 < prune < 1:
            raise ConfigError(f"prune: the sparsity must be a fraction strictly between 0 and 1 (e.g. 0.5 removes "
                              f"half the weights); got {prune!r}")
    if prune_kind not in pruning.KINDS:
        raise ConfigError(f"prune_kind: '{prune_kind}' is not one of: {', '.join(pruning.KINDS)}")
    if isinstance(finetune_epochs, bool) or not isinstance(finetune_epochs, int) \
            or not 0 <= finetune_epochs <= MAX_FINETUNE_EPOCHS:
        raise ConfigError(f"finetune_epochs: give a whole number from 0 to {MAX_FINETUNE_EPOCHS}; got {finetune_epochs!r}")
    if finetune_epochs and prune is None:
        raise ConfigError("finetune_epochs: the fine-tune follows pruning; give a sparsity to prune too")
    if quantize is None and prune is None:
        raise ConfigError("nothing to do: ask for int8 quantisation (dynamic or static), pruning (a sparsity), "
                          "or both")


def supported_tasks() -> list[str]:
    from core.tasks import list_tasks, task_spec
    return [name for name in list_tasks() if "run_data" in task_spec(name).entry_points]


# ---- measuring ------------------------------------------------------------------------------------

def measure(variant: str, model, recipe: dict, data, latency: dict) -> tuple[dict, bytes]:
    """(row of the table, the state dict's bytes as saved) for one model; `latency` maps batch sizes to
    milliseconds per input."""
    blob = state_bytes(model)
    row = {"variant": variant, "quantize": recipe.get("quantize"), "prune": recipe.get("prune"),
           "prune_kind": recipe.get("prune_kind"), "finetune_epochs": recipe.get("finetune_epochs", 0),
           "size_bytes": len(blob), "zipped_bytes": len(zlib.compress(blob, 6)),
           "sparsity": round(pruning.sparsity(model), 6),
           **{f"latency_ms_b{batch}": value for batch, value in latency.items()},
           "metric": float(data.evaluate(model)), "measured_at": time.time()}
    return row, blob


def state_bytes(model) -> bytes:
    buffer = io.BytesIO()
    torch.save(int8.portable_state(model), buffer)
    return buffer.getvalue()


def latencies_ms(models: list, inputs: torch.Tensor, max_repeats: int = 50) -> list[float]:
    """Median milliseconds per input of `model(inputs)` for each model, after WARMUP passes each, under
    inference mode. The models take turns, one pass each per round, so a machine that gets busier or
    quieter meanwhile slows them all alike and their ratios stay fair."""
    times: list[list[float]] = [[] for _ in models]
    with torch.inference_mode():
        for model in models:
            for _ in range(WARMUP):
                model(inputs)
        deadline = time.perf_counter() + REPEAT_BUDGET_S * len(models)
        rounds = 0
        while rounds < max(max_repeats, MIN_REPEATS) and (rounds < MIN_REPEATS or time.perf_counter() < deadline):
            for model, spent in zip(models, times):
                start = time.perf_counter()
                model(inputs)
                spent.append(time.perf_counter() - start)
            rounds += 1
    return [1000.0 * statistics.median(spent) / len(inputs) for spent in times]


@contextmanager
def _threads(count: int):
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ---- stored table and artifacts -----------------------------------------------------------------

def compression_report(run_id: str) -> CompressionReport | None:
    """The run's stored table, or None when it was never compressed (or the file is unreadable)."""
    path = run_dir(run_id) / FOLDER / REPORT
    try:
        raw = json.loads(path.read_text())
        if raw.get("version") != REPORT_VERSION:
            return None
        return CompressionReport.from_dict(raw)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _store(report: CompressionReport, files: dict) -> CompressionReport:
    """Write the variants' files, then the table merged with earlier variants of the same checkpoint; files
    of variants made from another checkpoint are removed (their table no longer applies)."""
    folder = run_dir(report.run_id) / FOLDER
    previous = compression_report(report.run_id)
    stale: list[str] = []
    if previous is not None:
        same_source = previous.which == report.which and previous.checkpoint == report.checkpoint
        fresh = {row["variant"] for row in report.rows}
        kept = [row for row in previous.rows if row["variant"] not in fresh]
        if same_source:
            report.rows = report.rows[:1] + kept + report.rows[1:]
        else:
            stale = [row["variant"] for row in kept]
    for variant, (blob, sidecar) in files.items():
        atomic_write(folder / f"{variant}.pt", lambda handle, blob=blob: handle.write(blob))
        atomic_write(folder / f"{variant}.json", lambda handle, s=sidecar: handle.write(json.dumps(s, indent=1).encode()))
    atomic_write(folder / REPORT, lambda handle: handle.write(json.dumps(report.to_dict(), indent=1).encode()))
    for variant in stale:
        for suffix in (".pt", ".json"):
            (folder / f"{variant}{suffix}").unlink(missing_ok=True)
    _log(report)
    return report


def _log(report: CompressionReport) -> None:
    from core.store import RunStore
    s = report.summary()
    RunStore().log_event(report.run_id, f"compressed {report.which}.pt: {s['variant']} {s['size_ratio']:.2f}x smaller, "
                                        f"{s['latency_ratio']:.2f}x the speed at batch 1, {report.metric} "
                                        f"{s['metric_before']:.4f} -> {s['metric_after']:.4f}")


def load_variant(run_id: str, variant: str):
    """A stored variant as an eval-mode model on the CPU ("original": the float model it was made from)."""
    from core.tasks.checkpoints import load_run_model

    folder = run_dir(run_id) / FOLDER
    if variant == ORIGINAL:
        report = compression_report(run_id)
        return copy.deepcopy(load_run_model(run_id, report.which if report else "best").model).cpu().eval()
    sidecar = folder / f"{variant}.json"
    if not isinstance(variant, str) or not VARIANT_NAME.match(variant) or not sidecar.is_file():
        report = compression_report(run_id)
        check_finished(run_id, "compress")  # an unknown run says so first
        have = ", ".join(report.variants) if report and report.variants else "none yet"
        raise LabError(f"run {run_id} has no compressed variant '{variant}'; it has: {have}")
    try:
        recipe = json.loads(sidecar.read_text())
        which, quantize, shape = recipe["which"], recipe.get("quantize"), recipe["input"]["shape"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{sidecar.name} of run {run_id} is unreadable ({exc})") from None
    run_model = load_run_model(run_id, which, device="cpu")
    model = copy.deepcopy(run_model.model).cpu().eval()
    if quantize:
        dtype = getattr(torch, recipe["input"].get("dtype", "float32"))
        example = torch.randn(1, *shape) if dtype.is_floating_point else torch.zeros(1, *shape, dtype=dtype)
        model = int8.rebuild_quantized(model, quantize, example, run_model.config.model.name)
    path = folder / f"{variant}.pt"
    try:
        with warnings.catch_warnings():  # torch's own notice while it rebuilds int8 tensors
            warnings.filterwarnings("ignore", message="TypedStorage is deprecated")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  missing, truncated or unsafe: one message
        raise CheckpointError(f"{path.name} of run {run_id} cannot be loaded ({str(exc).splitlines()[0][:200]})") from None
    try:
        int8.load_portable_state(model, state)
    except RuntimeError as exc:
        raise CheckpointError(f"{path.name} of run {run_id} does not fit its model "
                              f"'{run_model.config.model.name}': {str(exc).splitlines()[0]}") from None
    return model.eval()


# ---- for terminals --------------------------------------------------------------------------------

def format_table(report: CompressionReport) -> str:
    """The table as aligned text, then one line comparing the requested variant with the original."""
    header = f"{'variant':<44} {'size KB':>9} {'zipped KB':>9} {'zeros':>6} {'ms/in b1':>9} {'ms/in b32':>9} " \
             f"{report.metric:>9}"
    lines = [header]
    for row in report.rows:
        lines.append(f"{row['variant']:<44} {row['size_bytes'] / 1024:>9.1f} {row['zipped_bytes'] / 1024:>9.1f} "
                     f"{row['sparsity']:>6.1%} {row['latency_ms_b1']:>9.4f} {row['latency_ms_b32']:>9.4f} "
                     f"{row['metric']:>9.4f}")
    if report.requested:
        s = report.summary()
        lines.append(f"{s['variant']}: {s['size_ratio']:.2f}x smaller ({s['zipped_size_ratio']:.2f}x zipped), "
                     f"{s['latency_ratio']:.2f}x the original's speed at batch 1 ({s['latency_ratio_b32']:.2f}x at 32), "
                     f"{report.metric} {s['metric_before']:.4f} -> {s['metric_after']:.4f}; "
                     f"latency on {report.threads} CPU thread(s)")
    return "\n".join(lines)
