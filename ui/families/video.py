"""Video classification on the pages: clips as frame strips (Train), a clip classified window by window
(Media), and the fusion variants side by side (Runs). Logic lives in core.tasks.video.clips and
core.tasks.video; this module only draws."""

from __future__ import annotations

import hashlib

import plotly.graph_objects as go
import streamlit as st

from core.errors import LabError
from ui.charts import PALETTE, base_layout
from ui.i18n import N_, t, t_core
from ui.resources import MEDIA_DEVICE, table_columns

VIDEO_TYPES = ["mp4", "webm", "mov", "avi"]


# ---- Train: what the clips look like ------------------------------------------------------------

@st.cache_data(max_entries=8, show_spinner=False)  # the caller's spinner speaks the page's language
def _preview(config_json: str):
    from core.config import RunConfig
    from core.tasks.video import preview_clips
    return preview_clips(RunConfig.from_json(config_json), per_class=1)


def preview(config) -> None:
    from core.data import dataset_info
    if dataset_info(config.data.name).needs_path and not config.data.path:
        st.info(t("Choose a folder or .zip of videos (train/<class>/*.mp4) to see example clips."))
        return
    try:
        with st.spinner(t("Preparing example clips…")):
            classes, clips, labels = _preview(config.to_json())
    except LabError as exc:
        st.info(t_core(str(exc)))
        return
    from core.tasks.video.clips import clip_strip
    st.caption(t("One clip per class, {frames} frames left to right ({size}px): the class shows only in how the "
                 "frames change.", frames=clips.shape[1], size=clips.shape[-1]))
    for clip, label in zip(clips, labels.tolist()):
        st.image(clip_strip(clip, scale=2), caption=classes[label], width="stretch")


# ---- Media: classify an uploaded clip -----------------------------------------------------------

@st.cache_data(max_entries=4, show_spinner=False)  # the caller's spinner speaks the page's language
def _decoded(digest: str, _data: bytes, name: str, every_s: float, size: int):
    from core.tasks.video.clips import decode_clip
    return decode_clip(_data, name=name, size=size, every_s=every_s)


@st.cache_data(max_entries=16, show_spinner=False)
def _example(class_name: str) -> bytes:
    from core.tasks.video.clips import example_video
    return example_video(class_name)


def timeline_figure(prediction) -> go.Figure:
    """Top class of every window against the window's middle time; colour follows the probability."""
    table = prediction.windows
    middle = (table["start_s"] + table["end_s"]) / 2
    fig = go.Figure(go.Scatter(
        x=middle, y=table["top1"], mode="markers+lines", line=dict(color="#cbd5e1", width=1),
        marker=dict(size=13, color=table["p1"], colorscale="Blues", cmin=0, cmax=1, showscale=True,
                    colorbar=dict(title="p")),
        customdata=table["window"],
        hovertemplate=t("window %{customdata} at %{x:.2f}s: %{y} (%{marker.color:.0%})") + "<extra></extra>"))
    fig.update_xaxes(title_text=t("window middle (s)"))
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=prediction.classes)
    return base_layout(fig, 320)


def summary_figure(prediction) -> go.Figure:
    table = prediction.summary.iloc[::-1]  # most probable on top
    fig = go.Figure(go.Bar(x=table["mean_probability"], y=table["class"], orientation="h",
                           marker_color=PALETTE[0], text=[f"{p:.0%}" for p in table["mean_probability"]],
                           textposition="auto", hovertemplate="%{y}: %{x:.1%}<extra></extra>"))
    fig.update_xaxes(range=[0, 1], title_text=t("mean probability over windows"))
    return base_layout(fig, 60 + 26 * len(table))


@st.cache_data(max_entries=8, show_spinner=False)  # the caller's spinner speaks the page's language
def _evaluation(run_id: str, checkpoint_mtime_ns: int):
    from core.tasks import task_spec
    return task_spec("video").entry("evaluate")(run_id, "best")


def results(run) -> None:
    """The best checkpoint on the validation clips: accuracy, confusion matrix and per-class scores."""
    from core.tasks.checkpoints import existing_checkpoint
    from ui.charts import confusion_figure
    st.subheader(t("Validation results"), anchor=False)
    try:
        _, mtime_ns = existing_checkpoint(run.id, "best")
        with st.spinner(t("Evaluating the best checkpoint on the validation clips…")):
            report = _evaluation(run.id, mtime_ns)
    except LabError as exc:
        st.error(t_core(str(exc)), icon=":material/error:")
        return
    left, right = st.columns([3, 2], gap="large")
    left.plotly_chart(confusion_figure(report.classes, report.confusion), key=f"video-cm-{run.id}")
    with right:
        st.metric(t("accuracy (best checkpoint)"), f"{report.accuracy:.2%}")
        st.caption(t("{count} validation clips", count=report.num_samples))
        st.dataframe(report.per_class, hide_index=True, width="stretch",
                     column_config=table_columns(report.per_class.columns, progress=("precision", "recall", "f1")))


def media(source: dict) -> None:
    from core.tasks.checkpoints import load_run_model
    from core.tasks.video.clips import classify_clip, clip_strip, default_every_s
    try:
        run_model = load_run_model(source["run_id"], source.get("which", "best"), device=MEDIA_DEVICE)
    except LabError as exc:
        st.error(t_core(str(exc)), icon=":material/error:")
        return
    meta, pre = run_model.metadata, run_model.metadata["preprocessing"]
    classes, frames_per_window = list(meta["classes"]), int(pre["frames"])
    st.caption(f"{run_model.config.model.name} · "
               + t("{count} classes · windows of {frames} frames at {size}px", count=len(classes),
                   frames=frames_per_window, size=pre["image_size"])
               + " · " + ", ".join(classes[:12]) + ("…" if len(classes) > 12 else ""))

    upload = st.file_uploader(t("A video clip"), type=VIDEO_TYPES, key="video_clip")
    example = None
    if run_model.config.data.name == "moving-shapes":
        example = st.selectbox(t("…or a generated moving-shapes clip"), classes, index=None, key="video_example",
                               placeholder=t("Choose a class to generate a 24-frame clip of it"))
    c1, c2 = st.columns(2)
    every_s = c1.number_input(t("Sample a frame every (s)"), 0.02, 10.0, min(10.0, max(0.02, default_every_s(meta))),
                              0.02, format="%.2f",
                              key="video_every", help=t("Match the spacing of the training frames"))
    stride = c2.number_input(t("Window stride (frames)"), 1, 64, max(1, frames_per_window // 4), key="video_stride")
    if upload is not None:
        data, name = upload.getvalue(), upload.name
    elif example is not None:
        data, name = _example(example), f"generated-{example}.mp4"
    else:
        st.info(t("Upload an mp4, webm, mov or avi clip: windows of frames are classified along it."),
                icon=":material/movie:")
        return
    try:
        with st.spinner(t("Decoding the video (in a separate process)…")):
            frames = _decoded(hashlib.sha1(data).hexdigest(), data, name, float(every_s), int(pre["image_size"]))
        prediction = classify_clip(run_model, frames, stride=int(stride))
    except LabError as exc:
        st.error(f"**{name}**: {exc}", icon=":material/videocam_off:")
        return

    top = prediction.summary.iloc[0]
    count = len(prediction.starts)
    st.markdown(t("**Clip: {label}** (mean probability {p:.1%}, top class in {top} of {count} windows of {frames} "
                  "frames; {sampled} frames sampled)", label=top["class"], p=top["mean_probability"],
                  top=int(top["windows_top1"]), count=count, frames=frames_per_window, sampled=len(prediction.times)))
    if prediction.repeated:
        st.caption(t("The clip gave only {count} frames, fewer than a window: frames were repeated.",
                     count=len(prediction.times)))
    left, right = st.columns([3, 2])
    with left:
        event = st.plotly_chart(timeline_figure(prediction), key="video_timeline", on_select="rerun",
                                selection_mode="points")
    right.plotly_chart(summary_figure(prediction), key="video_summary")
    points = (event.selection.points if event and event.selection else []) or []
    clicked = points[0].get("customdata") if points else None
    if clicked is not None and clicked != st.session_state.get("_video_clicked"):
        st.session_state["_video_clicked"] = clicked  # a new click moves the slider once; the slider then rules
        st.session_state["video_window"] = int(clicked[0] if isinstance(clicked, list) else clicked)
    window = 0
    if st.session_state.get("video_window", 0) > count - 1:  # a shorter clip than the last one
        st.session_state["video_window"] = 0
    if count > 1:
        window = st.slider(t("Window"), 0, count - 1, key="video_window", help=t("Or click a point of the timeline"))
    row = prediction.windows.iloc[window]
    caption = t("window {n}: {start:.2f}s to {end:.2f}s → {label} ({p:.0%})", n=window, start=row["start_s"],
                end=row["end_s"], label=row["top1"], p=row["p1"])
    st.image(clip_strip(prediction.window_frames(window), scale=3), caption=caption, width="stretch")
    if st.toggle(t("Where and when the model looked"), key="video_explain"):
        _explain_window(run_model, prediction.window_frames(window))


EXPLAIN_METHODS = {"saliency": N_("saliency (gradient)"), "ig": N_("integrated gradients")}


def _explain_window(run_model, frames) -> None:
    """The window's frames with the attribution laid over each (one colour scale for all), and each frame's share
    of the attribution: which moments the verdict rests on (core.tasks.video.explain)."""
    import numpy as np
    import torch
    from PIL import Image

    from core.tasks.classification.gradcam import overlay
    from core.tasks.video.clips import clip_strip
    from core.tasks.video.explain import explain_window
    names = {key: t(label) for key, label in EXPLAIN_METHODS.items()}
    method = st.radio(t("Method"), list(names), format_func=names.get, horizontal=True, key="video_explain_method")
    try:
        with st.spinner(t("Computing attributions…")):
            explained = explain_window(run_model, frames, method)
    except LabError as exc:
        st.error(t_core(str(exc)), icon=":material/error:")
        return
    laid = [torch.from_numpy(np.array(overlay(Image.fromarray(frame.permute(1, 2, 0).numpy()), heat))).permute(2, 0, 1)
            for frame, heat in zip(frames, explained.maps)]  # (3, S, S) uint8 each
    st.image(clip_strip(torch.stack(laid), scale=3), width="stretch",
             caption=t("Evidence for {label}, frame by frame (red: most)", label=explained.class_name))
    st.plotly_chart(frame_share_figure(explained.frame_share), key="video_frame_share")


def frame_share_figure(share) -> go.Figure:
    frames = list(range(1, len(share) + 1))
    fig = go.Figure(go.Bar(x=frames, y=share, marker_color=PALETTE[1],
                           hovertemplate=t("frame %{x}: %{y:.0%} of the evidence") + "<extra></extra>"))
    fig.update_xaxes(title_text=t("frame in the window"), dtick=1)
    fig.update_yaxes(title_text=t("share of the attribution"), tickformat=".0%", rangemode="tozero")
    return base_layout(fig, 240)


# ---- Runs: the fusion variants compared ---------------------------------------------------------

def runs_extra(run_ids: list[str]) -> None:
    from core.models import list_models
    from core.store.records import metric_title
    from core.tasks.video import fusion_comparison
    from ui.resources import store

    best, curves = fusion_comparison(store(), run_ids)
    if best.empty:
        return
    st.subheader(t("Fusion variants"))
    st.caption(t("Where the frames meet: best validation accuracy per model (the best run of each), and "
                 "validation accuracy after every epoch."))
    order = [m for m in list_models(task="video") if m in set(best.model)] + \
        sorted(set(best.model) - set(list_models(task="video")))
    per_model = best.groupby("model")["best_val_acc"].max().reindex(order)
    colours = {model: PALETTE[i % len(PALETTE)] for i, model in enumerate(order)}
    left, right = st.columns(2)
    bars = go.Figure(go.Bar(x=per_model.index, y=per_model.values, marker_color=[colours[m] for m in order],
                            text=[f"{v:.1%}" if v == v else "–" for v in per_model.values], textposition="auto",
                            hovertemplate="%{x}: %{y:.1%}<extra></extra>"))
    bars.update_yaxes(range=[0, 1], title_text=t("best {metric}", metric=t(metric_title("val_acc"))))
    left.plotly_chart(base_layout(bars, 340), key="video_fusion_bars")
    lines = go.Figure()
    for _, part in curves.groupby("run_id", sort=False):
        model = part.model.iloc[0]
        lines.add_trace(go.Scatter(x=part.epoch, y=part.val_acc, mode="lines+markers", name=f"{model} · "
                                   f"{part.name.iloc[0]}", line=dict(color=colours.get(model, PALETTE[-1]))))
    lines.update_xaxes(title_text=t("epoch"))
    lines.update_yaxes(range=[0, 1], title_text=t(metric_title("val_acc")))
    right.plotly_chart(base_layout(lines, 340), key="video_fusion_lines")
    st.dataframe(best, hide_index=True, width="stretch",
                 column_config=table_columns(best.columns, progress=("best_val_acc",), fmt="%.3f"))
