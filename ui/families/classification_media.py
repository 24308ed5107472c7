"""Media tabs of image classification (ui.families.classification): images with an explanation of each prediction
(Grad-CAM, integrated gradients, saliency or occlusion, through core.tasks.classification.explain) and what the layers
see for one of them, model comparison, video."""

from __future__ import annotations

import hashlib

import streamlit as st

from core.errors import LabError
from ui.charts import timeline_figure, top_k_figure
from ui.i18n import N_, t, t_core
from ui.resources import MEDIA_DEVICE, table_columns

IMAGE_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"]  # what core.data.media decodes
VIDEO_TYPES = ["mp4", "webm", "mov", "avi", "mkv"]
MANY = 6  # more images than this are shown as a table
EXPLAIN = {"": N_("None"), "gradcam": N_("Grad-CAM"), "ig": N_("Integrated gradients"), "saliency": N_("Saliency"),
           "occlusion": N_("Occlusion")}
EXPLAIN_HELP = N_("Where in the picture the evidence for the predicted class lies, computed with Captum. Grad-CAM: the "
                  "last convolutional layer's maps weighted by their gradients (coarse, convolutional models only). "
                  "Integrated gradients: gradients summed along a path from the mean colour to the picture. Saliency: "
                  "how strongly each pixel moves the score. Occlusion: how much the score drops when a patch is "
                  "covered (the slowest).")


def load_predictor(source: dict):
    """A run's checkpoint, a compressed variant of one, or pretrained weights; core caches predictors and reloads
    one when its file changes."""
    from core.inference import load_source
    with st.spinner(t("Loading the model…")):
        return load_source(source, device=MEDIA_DEVICE)


def _expand_uploads(files) -> list[tuple[str, object]]:
    """(name, PIL image or InputError) for every uploaded image (core.data.media.decode_uploads)."""
    from core.data.media import decode_uploads
    return decode_uploads([(upload.name, upload.getvalue()) for upload in files])


def images_tab(predictor) -> None:
    files = st.file_uploader(t("Images, or a .zip of images"), type=IMAGE_TYPES + ["zip"], accept_multiple_files=True,
                             key="media_images")
    if st.toggle(t("Use the camera"), key="media_camera"):
        shot = st.camera_input(t("Take a photo"), key="media_shot")
        files = list(files or []) + ([shot] if shot is not None else [])
    if not files:
        st.info(t("Upload one or more pictures (jpg, png, webp, bmp, gif, tiff) or a zip of them."),
                icon=":material/upload:")
        return
    items = _expand_uploads(files)
    good = [(name, img) for name, img in items if not isinstance(img, Exception)]
    for name, err in items:
        if isinstance(err, Exception):
            message = str(err)  # core's messages start with the file's name: bold it instead of repeating it
            text = f"**{name}**{message[len(name):]}" if message.startswith(name) else f"**{name}**: {message}"
            st.error(text, icon=":material/broken_image:")
    if not good:
        return
    if len(good) > MANY:
        from core.tasks.classification.predictor import classify_images
        with st.spinner(t("Classifying {count} images…", count=len(good))):
            table = classify_images(predictor, good, k=3)
        st.dataframe(table, hide_index=True, width="stretch",
                     column_config=table_columns(table.columns, progress=("p1", "p2", "p3")))
        st.download_button(t("Download predictions (CSV)"), table.to_csv(index=False).encode(), "predictions.csv",
                           "text/csv", icon=":material/download:")
        good = good[:MANY]
        st.caption(t("The first {count} in detail:", count=MANY))
    names = {key: t(label) for key, label in EXPLAIN.items()}
    method = st.radio(t("Explain each prediction"), list(EXPLAIN), format_func=names.get, horizontal=True,
                      key="media_explain", help=t(EXPLAIN_HELP))
    for name, image in good:
        with st.container(border=True):
            left, middle, right = st.columns([1, 2, 1])
            left.image(image, caption=name, width="stretch")
            pairs = predictor.top_k(image, k=min(5, len(predictor.classes)))
            middle.markdown(f"**{pairs[0][0]}** ({pairs[0][1]:.1%})")
            middle.plotly_chart(top_k_figure(pairs), key=f"topk-{name}-{id(image)}")
            if method:
                explanation(right, predictor, image, method, names[method])
    layers_view(predictor, good)


def explanation(column, predictor, image, method: str, title: str) -> None:
    """The heat map of `method` laid over the pixels the model saw (its crop, for pretrained models)."""
    from core.tasks.classification.explain import explain
    from core.tasks.classification.gradcam import overlay
    try:
        with st.spinner(t("Explaining…")):
            heat = explain(predictor, image, method)
        column.image(overlay(predictor.view(image), heat), caption=title, width="stretch")
    except LabError as exc:
        column.info(t_core(str(exc)))


def layers_view(predictor, good: list[tuple[str, object]]) -> None:
    """The first layer's filters and every convolution's activation maps for one of the uploads (ui.explain_panel)."""
    from ui.explain_panel import draw_layers
    if not st.toggle(t("Show what the layers see"), key="media_layers"):
        return
    index = 0
    if len(good) > 1:
        labels = [name for name, _ in good]
        index = st.selectbox(t("For the picture"), range(len(good)), format_func=labels.__getitem__,
                             key="media_layers_image")
    with st.container(border=True):
        draw_layers(predictor, good[index][1], key="media_layers_layer")


def compare_tab(sources: list[dict], current: int | None = None) -> None:
    from core.inference import default_comparison
    from ui.resources import source_labels
    labels = source_labels(sources)
    chosen = st.multiselect(t("Models to compare"), range(len(sources)), format_func=lambda i: labels[i],
                            default=default_comparison(sources, current), key="media_compare_models")
    upload = st.file_uploader(t("One image"), type=IMAGE_TYPES, key="media_compare_image")
    if not upload or not chosen:
        st.info(t("Pick two or more models and upload an image to see how they disagree."), icon=":material/compare:")
        return
    from core.data.media import open_image
    try:
        image = open_image(upload.getvalue(), upload.name)
    except LabError as exc:
        st.error(f"**{upload.name}**: {exc}")
        return
    st.image(image, width=220)
    results = []
    for index in chosen:
        try:
            predictor = load_predictor(sources[index])
            results.append((labels[index], predictor.top_k(image, k=3)))
        except LabError as exc:
            results.append((labels[index], exc))
    tops = {r[1][0][0] for r in results if not isinstance(r[1], Exception)}
    if len(tops) > 1:
        st.warning(t("The models disagree: {classes}", classes=", ".join(sorted(tops))), icon=":material/call_split:")
    elif tops:
        st.success(t("All models agree: {label}", label=tops.pop()), icon=":material/check_circle:")
    columns = st.columns(len(results))
    for column, (label, result) in zip(columns, results):
        with column.container(border=True):
            st.markdown(f"**{label}**")
            if isinstance(result, Exception):
                st.error(t_core(str(result)))
            else:
                st.plotly_chart(top_k_figure(result), key=f"cmp-{label}")


@st.cache_data(max_entries=4, show_spinner=False)  # the caller shows a spinner in the page's language
def _frames(digest: str, _data: bytes, name: str, every_s: float, max_frames: int):
    from core.data.video_frames import sample_frames
    return sample_frames(_data, name=name, every_s=every_s, max_frames=max_frames)


def video_tab(predictor) -> None:
    upload = st.file_uploader(t("A video"), type=VIDEO_TYPES, key="media_video")
    c1, c2 = st.columns(2)
    every_s = c1.slider(t("Sample a frame every (s)"), 0.25, 10.0, 1.0, 0.25, key="media_every")
    max_frames = c2.slider(t("At most this many frames"), 10, 300, 120, 10, key="media_max_frames")
    if not upload:
        st.info(t("Upload an mp4, webm, mov, avi or mkv clip: sampled frames are classified one by one."),
                icon=":material/movie:")
        return
    data = upload.getvalue()
    try:
        with st.spinner(t("Decoding the video (in a separate process)…")):
            frames = _frames(hashlib.sha1(data).hexdigest(), data, upload.name, every_s, max_frames)
    except LabError as exc:
        st.error(f"**{upload.name}**: {exc}", icon=":material/videocam_off:")
        return
    from core.tasks.classification.predictor import classify_video
    per_frame, summary = classify_video(predictor, frames, k=3)
    top = summary.iloc[0]
    st.markdown(t("**Clip: {label}** (mean probability {p:.1%}, top class in {top} of {count} frames)",
                  label=top["class"], p=top["mean_probability"], top=int(top["frames_top1"]), count=len(frames)))
    st.caption(t("Click a point to see its frame."))
    event = st.plotly_chart(timeline_figure(per_frame), key="timeline", on_select="rerun", selection_mode="points")
    points = (event.selection.points if event and event.selection else []) or []
    frame_index = points[0].get("customdata", points[0].get("point_index", 0)) if points else 0
    if isinstance(frame_index, list):
        frame_index = frame_index[0]
    left, right = st.columns([1, 1])
    time_s, image = frames[int(frame_index)]
    # the frame at its own size (never wider than the column): stretching a small frame blurred and warped it
    left.image(image, width="content",
               caption=t("frame at {time:.1f}s: {label}", time=time_s, label=per_frame.iloc[int(frame_index)]["top1"]))
    right.dataframe(summary, hide_index=True, width="stretch", column_config=table_columns(summary.columns))
