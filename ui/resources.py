"""Cached resources and small helpers every page uses."""

from __future__ import annotations

import streamlit as st

from core.errors import LabError

TRAIN_PAGE = "app_pages/train.py"
RUNS_PAGE = "app_pages/runs.py"
MEDIA_PAGE = "app_pages/media.py"
STATUS_ICONS = {"queued": ":material/schedule:", "running": ":material/play_circle:",
                "completed": ":material/check_circle:", "failed": ":material/error:",
                "cancelled": ":material/cancel:", "interrupted": ":material/pause_circle:"}
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
    return f":{STATUS_COLOURS.get(status, 'gray')}-badge[{STATUS_ICONS.get(status, '')} {status}]"


def show_error(exc: Exception) -> None:
    """User-fixable errors as they are; anything else as a short line (details stay in the logs)."""
    if isinstance(exc, LabError):
        st.error(str(exc), icon=":material/error:")
    else:
        st.error(f"Something went wrong: {type(exc).__name__}: {str(exc)[:300]}", icon=":material/error:")


def duration(seconds) -> str:
    if seconds is None or seconds != seconds:
        return "–"
    seconds = int(round(seconds))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else (f"{minutes}m {secs:02d}s" if minutes else f"{secs}s")
