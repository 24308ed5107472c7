"""What a user can pick on the Media page: every stopped run of any family that saved weights, the compressed
variants of image classifiers (core.toolkit.compress: int8, pruned), and the pretrained ImageNet classifiers. Each
source names its task, whose ui.families module draws the panel."""

from __future__ import annotations

import dataclasses
import functools

from core.engine.checkpoint import BEST, LAST
from core.errors import RunNotFound
from core.paths import run_dir
from core.store.records import SETTLED_STATUSES, watched_metric
from core.tasks.classification import SPEC as CLASSIFICATION
from core.tasks.classification.predictor import PRETRAINED_CHOICES, is_classifier_task, pretrained_cached


def list_model_sources(store=None) -> list[dict]:
    """Every stopped run with a checkpoint (newest first), then the pretrained choices.

    A run is listed with its best.pt; its last.pt is listed too when it is a different epoch
    (or when there is no best.pt), so the list never shows the same weights twice.
    """
    if store is None:
        from core.store import RunStore
        store = RunStore()
    sources: list[dict] = []
    runs = store.list_runs()
    details = store.get_runs()  # one query for every run's summary
    for row in runs.itertuples(index=False):
        if row.status not in SETTLED_STATUSES:
            continue
        try:
            folder = run_dir(row.id)
        except RunNotFound:
            continue
        has_best, has_last = (folder / BEST).is_file(), (folder / LAST).is_file()
        if not (has_best or has_last):
            continue
        summary = details[row.id].summary if row.id in details else {}
        task = details[row.id].task if row.id in details else CLASSIFICATION.name
        metric_name = watched_metric(summary)
        best_is_last = summary.get("best_epoch") == summary.get("epochs_done")
        for which, present in (("best", has_best), ("last", has_last and not (has_best and best_is_last))):
            if not present:
                continue
            value = (summary.get(f"best_{metric_name}") if which == "best"
                     else (summary.get("last") or {}).get(metric_name))
            metric = float(value) if isinstance(value, (int, float)) else None
            text = f" ({metric_name} {metric:.3f})" if metric is not None else ""
            sources.append({"kind": "run", "task": task, "run_id": row.id, "which": which, "metric": metric,
                            "dataset": row.dataset, "model": row.model, "status": row.status,
                            "label": f"{row.name} · {which}{text} · {row.id}"})
        if is_classifier_task(task):
            sources += _variants(row, task)
    for name in PRETRAINED_CHOICES:
        sources.append({"kind": "pretrained", "task": CLASSIFICATION.name, "name": name, "label": f"{name} (ImageNet)",
                        "cached": pretrained_cached(name)})
    return sources


def _variants(row, task: str) -> list[dict]:
    """The run's compressed variants (its Tools → Compress table), each a source of its own."""
    from core.toolkit.compress import compression_report
    report = compression_report(row.id)
    if report is None:
        return []
    found = []
    for variant in report.variants:
        metric = report.row(variant)["metric"]
        found.append({"kind": "variant", "task": task, "run_id": row.id, "which": report.which, "variant": variant,
                      "metric": metric, "dataset": row.dataset, "model": row.model, "status": row.status,
                      "label": f"{row.name} · {variant} ({report.metric} {metric:.3f}) · {row.id}"})
    return found


def load_source(source: dict, device="cpu"):
    """The image classifier's Predictor for one entry of `list_model_sources`: a run's checkpoint, a compressed
    variant of one (on the CPU, where int8 kernels run), or pretrained weights."""
    from core.tasks.classification.predictor import load_source as load_checkpoint_source
    if source.get("kind") != "variant":
        return load_checkpoint_source(source, device=device)
    from core.toolkit.compress import FOLDER
    sidecar = run_dir(source["run_id"]) / FOLDER / f"{source['variant']}.json"
    stamp = sidecar.stat().st_mtime_ns if sidecar.is_file() else 0  # a remade variant is a cache miss
    return _variant_predictor(source["run_id"], source["variant"], stamp)


@functools.lru_cache(maxsize=4)
def _variant_predictor(run_id: str, variant: str, stamp: int):
    from core.tasks.classification.predictor import load_run_predictor
    from core.toolkit.compress import compression_report, load_variant
    model = load_variant(run_id, variant)  # a LabError names the variants the run has
    report = compression_report(run_id)
    which = report.which if report else "best"
    original = load_run_predictor(run_id, which, device="cpu")
    metric = f" ({report.metric} {report.row(variant)['metric']:.3f})" if report else ""
    name = original.label.split(" · ")[0]
    return dataclasses.replace(original, model=model, source="variant", label=f"{name} · {variant}{metric}")


def default_source(sources: list[dict], run_id: str | None = None) -> int | None:
    """Which source Media preselects: the run named (e.g. the one just watched on Train), else the newest
    completed run's best checkpoint, else any run, else pretrained weights that need no download."""
    runs = [i for i, s in enumerate(sources) if s["kind"] == "run"]
    for wanted in ([i for i in runs if sources[i]["run_id"] == run_id] if run_id else [],
                   [i for i in runs if sources[i]["status"] == "completed" and sources[i]["which"] == "best"],
                   runs,
                   [i for i, s in enumerate(sources) if s["kind"] == "pretrained" and s.get("cached")]):
        if wanted:
            return wanted[0]
    return None


def default_comparison(sources: list[dict], first: int | None, count: int = 2) -> list[int]:
    """Sources to compare at first: `first`, then others from different runs (never two checkpoints of one
    run while another run is there), preferring best checkpoints."""
    chosen: list[int] = [] if first is None else [first]
    taken = {sources[first].get("run_id") or sources[first].get("name")} if first is not None else set()
    for prefer_best in (True, False):
        for i, source in enumerate(sources):
            identity = source.get("run_id") or source.get("name")
            if len(chosen) >= count or i in chosen or identity in taken:
                continue
            if source["kind"] == "pretrained" and not source.get("cached"):
                continue  # would download on a click the user did not make
            if prefer_best and source.get("which") not in (None, "best"):
                continue
            chosen.append(i)
            taken.add(identity)
    return chosen


def clear_caches() -> None:
    """Forget every loaded model (tests; a freed GPU)."""
    from core.tasks.checkpoints import clear_cache
    from core.tasks.classification.predictor import clear_caches as clear_predictors
    clear_cache()
    clear_predictors()
    _variant_predictor.cache_clear()
