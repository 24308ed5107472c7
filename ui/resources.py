"""Cached resources and small helpers every page uses."""

from __future__ import annotations

import streamlit as st

from core.errors import LabError
from ui.i18n import N_, t, t_core

MEDIA_DEVICE = "auto"  # Media and the concept demos run trained models on the GPU when there is one
TRAIN_PAGE = "app_pages/train.py"
RUNS_PAGE = "app_pages/runs.py"
MEDIA_PAGE = "app_pages/media.py"
STATUS_ICONS = {"queued": ":material/schedule:", "running": ":material/play_circle:",
                "completed": ":material/check_circle:", "failed": ":material/error:",
                "cancelled": ":material/cancel:", "interrupted": ":material/pause_circle:"}
STATUS_WORDS = (N_("queued"), N_("running"), N_("completed"), N_("failed"), N_("cancelled"), N_("interrupted"))
STATUS_COLOURS = {"queued": "gray", "running": "blue", "completed": "green", "failed": "red",
                  "cancelled": "orange", "interrupted": "violet"}


@st.cache_resource
def _store(path: str):
    from core.store import RunStore
    return RunStore(path)


def store():
    """The run store of the current LAB_HOME (one shared object per database file)."""
    from core.paths import db_path
    return _store(str(db_path()))


def status_badge(status: str) -> str:
    """A run's status as a coloured badge, its word in the page's language."""
    return f":{STATUS_COLOURS.get(status, 'gray')}-badge[{STATUS_ICONS.get(status, '')} {t(status)}]"


def show_error(exc: Exception) -> None:
    """User-fixable errors as they are; anything else as a short line (details stay in the logs)."""
    if isinstance(exc, LabError):
        st.error(t_core(str(exc)), icon=":material/error:")
    else:
        st.error(t("Something went wrong: {error}", error=f"{type(exc).__name__}: {str(exc)[:300]}"),
                 icon=":material/error:")


def duration(seconds) -> str:
    if seconds is None or seconds != seconds:
        return "–"
    seconds = int(round(seconds))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else (f"{minutes}m {secs:02d}s" if minutes else f"{secs}s")


def source_labels(sources: list[dict]) -> list[str]:
    """What Media lists for each model source, in the page's language: core's labels put together again from
    their parts (run name · best or last checkpoint (watched metric and value) · run id; pretrained names)."""
    from core.store.records import metric_title, watched_metric
    runs = store().get_runs() if any(s["kind"] == "run" for s in sources) else {}
    labels = []
    for source in sources:
        run = runs.get(source.get("run_id"))
        if source["kind"] != "run" or run is None:
            labels.append(source["label"])
            continue
        which = t("best") if source["which"] == "best" else t("last")
        metric = source.get("metric")
        value = f" ({t(metric_title(watched_metric(run.summary)))} {metric:.3f})" if metric is not None else ""
        labels.append(f"{run.name} · {which}{value} · {run.id}")
    return labels


# Column names of the tables core returns, as headers in the page's language (other columns, such as one per
# class, keep their names).
COLUMN_TITLES = {
    "file": N_("file"), "error": N_("error"), "class": N_("class"), "precision": N_("precision"),
    "recall": N_("recall"), "f1": N_("F1"), "support": N_("images"), "mean_probability": N_("mean probability"),
    "frames_top1": N_("frames as top class"), "windows_top1": N_("windows as top class"), "time_s": N_("time (s)"),
    "top1": N_("1st class"), "p1": N_("p(1st)"), "top2": N_("2nd class"), "p2": N_("p(2nd)"),
    "top3": N_("3rd class"), "p3": N_("p(3rd)"), "layer": N_("layer"), "type": N_("type"),
    "output shape": N_("output shape"), "parameters": N_("parameters"), "caption": N_("caption"),
    "score": N_("score"), "log-prob": N_("log-probability"), "observation": N_("observation"),
    "at the start": N_("at the start"), "model": N_("model"), "best_val_acc": N_("best validation accuracy"),
    "name": N_("name"), "run_id": N_("run id"), "epochs": N_("epochs"),
}


def table_columns(columns, progress: tuple[str, ...] = (), fmt: str = "%.2f") -> dict:
    """st.dataframe's column_config for a table of core's: translated headers, `progress` drawn as bars (0-1)."""
    config = {}
    for name in columns:
        if name not in COLUMN_TITLES:
            continue
        label = t(COLUMN_TITLES[name])
        config[name] = (st.column_config.ProgressColumn(label, min_value=0, max_value=1, format=fmt)
                        if name in progress else st.column_config.Column(label))
    return config


def skipped_box(title: str, count: int, reasons: list[str]) -> None:
    """What a data set skipped (core.data.text_files.SkipLog), folded away under `title`: one reason a line,
    each naming the file and line."""
    if count:
        with st.expander(title, icon=":material/warning:"):
            st.code("\n".join(reasons) + ("\n…" if count > len(reasons) else ""), language=None, wrap_lines=True)


def data_summary(config, summarise, *, ask_for_path: str, reading: str, problem=None):
    """The Train form preview's first steps for data sets summarised by core: ask for a path when the chosen data set
    needs one (`ask_for_path`), run `summarise(data_json, seed)` (the caller's st.cache_data wrapper) under a spinner
    saying `reading`, and show a LabError through `problem(message)` (an error box by default). The summary, or None."""
    import json

    from core.data import dataset_info
    if dataset_info(config.data.name).needs_path and not config.data.path:
        st.info(ask_for_path, icon=":material/upload_file:")
        return None
    try:
        with st.spinner(reading):
            return summarise(json.dumps(config.to_dict()["data"], sort_keys=True), config.seed)
    except LabError as exc:
        (problem or (lambda message: st.error(message, icon=":material/error:")))(t_core(str(exc)))
        return None
