"""The Collect page's model parts: train a classifier on the collection, watch it, and test it live.

The collection remembers its runs (core.data.collection); the newest one is watched from a fragment that
polls the store, like the Train page's live view, and the newest completed one answers "Test it".
"""

from __future__ import annotations

import time

import streamlit as st

from core.data import collection as col
from core.errors import LabError
from core.store import ACTIVE_STATUSES
from ui.charts import top_k_figure
from ui.collect import UPLOAD_TYPES, escape_markdown, next_round, widget_key
from ui.i18n import t
from ui.resources import TRAIN_PAGE, duration, show_error, status_badge, store

TEST_SHOT = "collect_test_shot"  # (collection, file name, bytes) of the picture being classified
POLL_S = 1.5


@st.cache_data(ttl=300, show_spinner=False)
def _pretrained_problem() -> str | None:
    from core.jobs.collection import pretrained_problem
    return pretrained_problem()


def _when(timestamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp)) if timestamp else "–"


# ---- train --------------------------------------------------------------------------------------------

def train_section(collection: col.Collection, counts: dict[str, int]) -> None:
    from core.jobs.collection import collection_runs

    st.subheader(t("Train"), anchor=False)
    short = col.shortfalls(counts)
    ready = len(counts) >= 2 and not short
    if len(counts) < 2:
        st.info(t("Add at least two classes, with {min} or more photos each, to train a model.",
                  min=col.MIN_IMAGES), icon=":material/category:")
    elif short:
        missing = ", ".join(f"{name} ({n})" for name, n in short.items())
        st.info(t("Every class needs at least {min} photos to train. Still to fill: {classes}.",
                  min=col.MIN_IMAGES, classes=missing), icon=":material/add_a_photo:")
    else:
        st.success(t("Ready: {classes} classes, {photos} photos. Training takes about a minute on a CPU.",
                     classes=len(counts), photos=sum(counts.values())), icon=":material/task_alt:")
    runs = collection_runs(collection)
    latest = runs[0][0] if runs else None
    busy = latest is not None and latest.status in ACTIVE_STATUSES
    mirror = st.toggle(t("Mirror photos while training"), value=True, key="collect_mirror",
                       help=t("Random left-right flips make more of few photos. Turn this off when left and right "
                              "matter, e.g. pointing left versus pointing right."))
    pretrained = False
    if ready and _pretrained_problem() is None:
        pretrained = st.toggle(t("Start from ImageNet features"), value=True, key="collect_pretrained",
                               help=t("Fine-tunes the head of a pretrained MobileNetV3-Small: better with few "
                                      "photos."))
    if st.button(t("Train the model"), type="primary", icon=":material/model_training:", disabled=not ready or busy,
                 width="stretch", help=t("A model is training already.") if busy else None):
        from core.jobs.collection import submit_collection
        from ui.forms import launch_key
        try:
            submit_collection(collection, pretrained=pretrained, mirror=mirror, request_key=launch_key())
        except Exception as exc:  # noqa: BLE001  a LabError says what to change; anything else in one line
            show_error(exc)
        else:
            st.rerun()
    if latest is not None:
        st.fragment(run_every=POLL_S if busy else None)(_run_panel)(latest.id, latest.status)


def _run_panel(run_id: str, status_at_render: str) -> None:
    from core.analysis import run_progress
    from core.store.records import best_of

    try:
        run = store().get_run(run_id)
    except LabError:  # deleted on the Runs page meanwhile
        st.rerun(scope="app")
    if run.status != status_at_render:  # queued -> running -> completed: redraw the page (Test it appears)
        st.rerun(scope="app")
    with st.container(border=True):
        st.markdown(status_badge(run.status) + " " + t("Latest run, started {when}", when=_when(run.created_at)))
        if run.status == "queued":
            st.caption(t("Starting the worker, or waiting for a free device…"))
        frame = store().metrics(run_id)
        progress = run_progress(run.status, run.config, run.summary, frame)
        if progress.total:
            text = t("Epoch {epoch}/{epochs} · step {done}/{total} · {elapsed}", epoch=progress.epoch,
                     epochs=progress.epochs, done=progress.done, total=progress.total,
                     elapsed=duration(run.duration_s or 0.0))
            if progress.eta_s is not None and run.status == "running":
                text += " · " + t("about {left} left", left=duration(progress.eta_s))
            st.progress(progress.fraction, text=text)
        if run.status == "failed":
            st.error(run.error or t("The run failed."), icon=":material/error:")
        last, best = store().last_metrics(run_id), best_of(run.summary)
        cells = st.columns(2)
        cells[0].metric(t("Validation accuracy"), f"{last['val_acc']:.0%}" if "val_acc" in last else "–")
        cells[1].metric(t("Best so far"), f"{best:.0%}" if best is not None else "–")
        st.page_link(TRAIN_PAGE, label=t("Open this run on the Train page"), query_params={"run": run_id},
                     icon=":material/monitoring:")


# ---- test ---------------------------------------------------------------------------------------------

def test_section(collection: col.Collection, counts: dict[str, int]) -> None:
    from core.jobs.collection import latest_model
    from core.store.records import best_of

    st.subheader(t("Test it"), anchor=False)
    found = latest_model(collection)
    if found is None:
        st.info(t("Once a model has finished training, test it here: show the webcam something and see what "
                  "the model thinks it is."), icon=":material/videocam:")
        return
    run, noted = found
    best = best_of(run.summary)
    seen = sum(int(n) for n in (noted.get("counts") or {}).values())
    st.caption(t("Model trained {when} on {photos} photos", when=_when(run.ended_at), photos=seen)
               + (" · " + t("validation accuracy {acc}", acc=f"{best:.0%}") if best is not None else ""))
    if noted.get("counts") and noted["counts"] != counts:
        st.caption(":material/update: " + t("The photos have changed since: train again to include them."))
    source = st.segmented_control(t("Test with"), ["webcam", "upload"], default="webcam", key="collect_test_with",
                                  format_func=lambda s: t("Webcam") if s == "webcam" else t("A photo file"),
                                  label_visibility="collapsed")
    if source == "upload":
        key = widget_key(f"collect_test_up:{collection.name}")
        st.file_uploader(t("A photo to classify"), type=UPLOAD_TYPES[:-1], key=key,
                         on_change=_keep_test_shot, args=(collection.name, key))
    else:
        key = widget_key(f"collect_test_cam:{collection.name}")
        st.camera_input(t("Show the webcam something"), key=key, on_change=_keep_test_shot,
                        args=(collection.name, key))
    shot = st.session_state.get(TEST_SHOT)
    if shot and shot[0] == collection.name:
        _prediction(run.id, shot[1], shot[2])


def _keep_test_shot(collection_name: str, key: str) -> None:
    picture = st.session_state.get(key)
    if picture is None:
        return
    st.session_state[TEST_SHOT] = (collection_name, picture.name, picture.getvalue())
    if key.startswith("collect_test_cam"):
        next_round(key.rsplit("#", 1)[0])  # a fresh camera: the next test is one click away


def _prediction(run_id: str, name: str, data: bytes) -> None:
    from core.jobs.collection import classify
    try:
        image, pairs = classify(run_id, data, name)
    except Exception as exc:  # noqa: BLE001  a bad picture or checkpoint: one line, never a traceback
        show_error(exc)
        return
    top, p = pairs[0]
    st.caption(t("The model's answer"))
    st.markdown(f"### :material/auto_awesome: {escape_markdown(top)} · {p:.0%}")
    left, right = st.columns([1, 2], vertical_alignment="center")
    left.image(image, width="stretch")
    right.plotly_chart(top_k_figure(pairs), key=f"collect-topk-{run_id}", config={"displayModeBar": False})
