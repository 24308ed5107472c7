"""Run configurations side by side: flattening, differences, hyperparameter and Runs-page tables.

Configs arrive as the JSON dicts stored with each run (`RunConfig.to_dict()` shape: name, data,
model, optim, device, ...). Nothing here assumes every run has every field: runs made by older
code, or by hand through the CLI, may lack some, and a missing field shows as MISSING.
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterable

import numpy as np
import pandas as pd

from core.config import task_of

MISSING = "—"  # shown where a run's config has no such field

RUNS_TABLE_COLUMNS = [
    "id", "name", "status", "task", "dataset", "model", "lr", "batch_size", "epochs", "optimizer",
    "best_val_acc", "last_val_acc", "best_metric", "best_value", "duration_s", "device", "tags", "created",
]

# Fields that differ between runs without being hyperparameters: the run's own name, and where
# the data lie on disk. Left out of the automatic choice of hparam_table's columns.
_NOT_HYPERPARAMETERS = ("name", "data.path")

_ABSENT = object()  # a field a config does not have (distinct from a field set to None)


def flatten(config: dict, prefix: str = "") -> dict[str, Any]:
    """{"optim": {"lr": 0.1}} -> {"optim.lr": 0.1}. Lists stay values; an empty section stays {}."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def display_value(value: Any) -> str:
    """How a config value reads in a table: 0.001 not 1.0000000000000000208e-03, lists as JSON."""
    if value is _ABSENT:
        return MISSING
    if isinstance(value, float):
        return repr(value)  # the shortest text that reads back as the same float
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def config_diff(configs: dict[str, dict]) -> pd.DataFrame:
    """The fields whose values differ among the runs, one column per run (the dict's keys: run
    ids, or names if you pass names), values as display strings. A field present in only some
    runs counts as differing. Rows follow the configs' own field order; empty when all agree.
    """
    labels = list(configs)
    flat = {label: flatten(config or {}) for label, config in configs.items()}
    fields = differing_fields(flat.values())
    table = {label: [display_value(flat[label].get(f, _ABSENT)) for f in fields] for label in labels}
    return pd.DataFrame(table, index=pd.Index(fields, name="field"), columns=labels, dtype=object)


def differing_fields(flat_configs: Iterable[dict[str, Any]]) -> list[str]:
    """Dotted fields whose values are not the same in every flattened config, in first-seen order."""
    flat_configs = list(flat_configs)
    order: dict[str, None] = {}
    for flat in flat_configs:
        order.update(dict.fromkeys(flat))
    differing = []
    for field in order:
        seen = {_same_key(flat.get(field, _ABSENT)) for flat in flat_configs}
        if len(seen) > 1:
            differing.append(field)
    return differing


def hparam_table(runs: pd.DataFrame, configs: dict[str, dict], metric_values: dict[str, float],
                 fields: list[str] | None = None, *, metric_name: str = "metric") -> pd.DataFrame:
    """One row per run of `runs` (RunStore.list_runs): run_id, name, one column per hyperparameter
    (dotted field names; by default the fields that differ among these runs), and `metric_name`
    from `metric_values` (NaN where a run has none). This is the input of a parallel-coordinates
    chart: a column whose values are all numbers (or numeric strings, or unset) becomes float64,
    with NaN for unset ones; any other column holds strings, booleans included ("True"/"False").
    """
    ids = [str(run_id) for run_id in runs["id"]] if "id" in runs.columns else []
    flat = {run_id: flatten(configs.get(run_id) or {}) for run_id in ids}
    if fields is None:
        fields = [f for f in differing_fields(flat.values()) if f not in _NOT_HYPERPARAMETERS]
    table: dict[str, Any] = {
        "run_id": ids,
        "name": list(runs["name"]) if "name" in runs.columns else ids,
    }
    for field in fields:
        table[field] = _typed_column([flat[run_id].get(field, _ABSENT) for run_id in ids])
    table[metric_name] = pd.Series([_to_float(metric_values.get(run_id)) for run_id in ids], dtype="float64")
    return pd.DataFrame(table)


# The Runs table's columns as shown: who and how it went first, then what it was trained on and with.
RUNS_COLUMN_ORDER = ["id", "name", "status", "best_metric", "best_value", "best_val_acc", "task", "dataset", "model",
                     "lr", "batch_size", "epochs", "optimizer", "last_val_acc", "duration_s", "device", "tags",
                     "created"]


def runs_table(runs: pd.DataFrame, configs: dict[str, dict],
               summaries: dict[str, dict] | None = None) -> pd.DataFrame:
    """The Runs page table: one row per run of `runs` (RunStore.list_runs), in its order, with the
    headline hyperparameters pulled from each config and the last val_acc from each summary's
    'last' metrics. `created` is a UTC timestamp (run ids are UTC too).
    """
    summaries = summaries or {}
    records = []
    for row in runs.to_dict("records"):
        run_id = str(row.get("id"))
        config = configs.get(run_id) or {}
        optim = config.get("optim") if isinstance(config.get("optim"), dict) else {}
        summary = summaries.get(run_id) or {}
        last = summary.get("last")
        tags = row.get("tags")
        best_metric = summary.get("best_metric") if isinstance(summary.get("best_metric"), str) else ""
        records.append({
            "id": run_id,
            "name": _text(row.get("name")),
            "status": _text(row.get("status")),
            "task": _task_name(config),
            "dataset": _text(row.get("dataset")) or _section_name(config, "data"),
            "model": _text(row.get("model")) or _section_name(config, "model"),
            "lr": _to_float(optim.get("lr")),
            "batch_size": _to_int(optim.get("batch_size")),
            "epochs": _to_int(optim.get("epochs")),
            "optimizer": _text(optim.get("optimizer")),
            "best_val_acc": _to_float(row.get("best_val_acc")),
            "last_val_acc": _to_float(last.get("val_acc")) if isinstance(last, dict) else math.nan,
            "best_metric": best_metric,  # each task watches its own: val_acc, val_loss, val_bleu4, val_return...
            "best_value": _to_float(summary.get(f"best_{best_metric}")) if best_metric else math.nan,
            "duration_s": _to_float(row.get("duration_s")),
            "device": _text(row.get("device")),
            "tags": ", ".join(str(tag) for tag in tags) if isinstance(tags, (list, tuple)) else (tags or ""),
            "created": _to_float(row.get("created_at")),
        })
    table = pd.DataFrame.from_records(records, columns=RUNS_TABLE_COLUMNS)
    # Same dtypes with or without rows, so a page can sort and format blindly.
    text = ("id", "name", "status", "task", "dataset", "model", "optimizer", "best_metric", "device", "tags")
    table = table.astype({**dict.fromkeys(text, "str"), "lr": "float64", "batch_size": "Int64", "epochs": "Int64", "best_val_acc": "float64",
                          "last_val_acc": "float64", "best_value": "float64", "duration_s": "float64", "created": "float64"})
    table["created"] = pd.to_datetime(table["created"], unit="s", utc=True)
    return table


def filter_runs(table: pd.DataFrame, *, text: str = "", statuses: Iterable[str] = (),
                datasets: Iterable[str] = (), models: Iterable[str] = (),
                tags: Iterable[str] = ()) -> pd.DataFrame:
    """Rows of a `runs_table` that match every given filter (an empty filter matches all).

    `text`: each whitespace-separated word must appear, case-insensitively, in the run's name,
    id, model, dataset or tags. `statuses`/`datasets`/`models`: the value is one of those given.
    `tags`: the run carries at least one of them (case-insensitive).
    """
    keep = np.ones(len(table), dtype=bool)
    words = str(text or "").lower().split()
    if words:
        haystack = pd.Series("", index=table.index, dtype="str")
        for column in ("name", "id", "model", "dataset", "tags"):
            if column in table.columns:
                haystack = haystack + "\n" + table[column].fillna("").astype(str).str.lower()
        for word in words:
            keep &= haystack.str.contains(word, regex=False).to_numpy(dtype=bool)
    for column, wanted in (("status", statuses), ("dataset", datasets), ("model", models)):
        wanted = _as_tuple(wanted)
        if wanted:
            keep &= table[column].isin(wanted).to_numpy(dtype=bool)
    wanted_tags = {tag.strip().lower() for tag in _as_tuple(tags) if tag.strip()}
    if wanted_tags:
        run_tags = table["tags"].fillna("").astype(str).str.lower().str.split(",")
        keep &= run_tags.map(lambda ts: bool(wanted_tags & {t.strip() for t in ts})).to_numpy(dtype=bool)
    return table[keep]


# ---- helpers -----------------------------------------------------------------------------------

def _same_key(value: Any) -> tuple:
    """A hashable key under which equal-looking values compare equal: 1 and 1.0 agree, True and
    1 do not (a flag is not a count), NaN equals NaN, lists compare by content."""
    if value is _ABSENT:
        return ("absent",)
    if isinstance(value, bool) or value is None:
        return ("const", value)
    if isinstance(value, (int, float)):
        return ("number", "nan" if value != value else float(value))
    if isinstance(value, str):
        return ("str", value)
    return ("json", json.dumps(value, sort_keys=True, default=str))


def _typed_column(values: list[Any]) -> pd.Series:
    present = [v for v in values if v is not _ABSENT and v is not None]
    numbers = [_to_float(v) for v in present]
    if present and not any(math.isnan(n) and not _is_nan(v) for n, v in zip(numbers, present)):
        return pd.Series([_to_float(v) for v in values], dtype="float64")
    return pd.Series([display_value(v) for v in values], dtype="str")


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and value != value


def _to_float(value: Any) -> float:
    """A number, or NaN for anything that is not one (None, booleans, words, missing)."""
    if value is None or value is _ABSENT or isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _to_int(value: Any):
    number = _to_float(value)
    return int(number) if math.isfinite(number) and number == int(number) else pd.NA


def _text(value: Any) -> str | None:
    # A None that went through a pandas column comes back as NaN, which is truthy: normalise both.
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    return str(value)


def _as_tuple(values: Iterable[str] | str | None) -> tuple:
    # A single string is one choice, not a sequence of one-letter choices.
    if values is None:
        return ()
    return (values,) if isinstance(values, str) else tuple(values)


def _section_name(config: dict, section: str) -> str | None:
    part = config.get(section)
    return str(part["name"]) if isinstance(part, dict) and part.get("name") is not None else None


def _task_name(config: dict) -> str:
    return task_of(config)
