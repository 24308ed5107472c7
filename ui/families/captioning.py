"""Image captioning on the pages: data preview, live sample captions, and captioning uploads on Media."""

from __future__ import annotations

import base64
import random

import streamlit as st

from core.errors import LabError
from ui.i18n import t, t_core
from ui.resources import table_columns

IMAGE_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"]  # what core.data.media decodes
PER_ROW = 4
UPLOAD_KEY = "captions_zip"


def form_extras() -> None:
    from ui.forms import PREFIX, save_zip_upload
    if st.session_state.get(PREFIX + "data.name") != "captions-folder":
        return
    st.file_uploader(t("Upload a .zip with captions.csv (columns image, caption) and the images…"), type=["zip"],
                     key=UPLOAD_KEY, on_change=save_zip_upload, args=(UPLOAD_KEY,))
    # the page draws the data.path field ("…or a file, folder or .zip on the server") right below


@st.cache_data(show_spinner=False, max_entries=8)  # the caller's spinner speaks the page's language
def _preview(config_json: str) -> dict:
    from core.config import RunConfig
    from core.tasks.captioning import data_preview
    return data_preview(RunConfig.from_json(config_json))


def _grid(images, captions) -> None:
    """Images in rows of PER_ROW, each with its caption(s) underneath."""
    for start in range(0, len(images), PER_ROW):
        columns = st.columns(PER_ROW)
        for column, image, caption in zip(columns, images[start:start + PER_ROW], captions[start:start + PER_ROW]):
            column.image(image, width="stretch")
            column.caption(caption)


def preview(config) -> None:
    with st.spinner(t("Loading the captioned images…")):
        data = _preview(config.to_json())
    with st.container(border=True):
        st.subheader(t("Data preview"), anchor=False)
        st.caption(t_core(data["source"]) + " · "  # core's line, translated by its template
                   + t("{images:,} training images with {captions:,} captions · {val:,} validation images · "
                       "{size}px · vocabulary {words} words", images=data["train_images"],
                       captions=data["train_captions"], val=data["val_images"], size=data["image_size"],
                       words=data["vocab_size"])
                   + (" · " + t("{count} unreadable images skipped", count=data["skipped"]) if data["skipped"] else ""))
        _grid(data["images"], ["  \n".join(caps) for caps in data["captions"]])
    with st.container(border=True):
        st.subheader(t("Model"), anchor=False)
        st.metric(t("parameters"), f"{data['params']:,}")
        st.caption(t("Most frequent words: {words}", words=", ".join(data["top_words"])))


def live(run, folder) -> None:
    from core.engine.samples import latest_samples
    sample = latest_samples(folder).get("captions")
    if sample is None:
        return
    try:
        items = sample.load()["items"]
    except (OSError, ValueError, KeyError):
        return  # being written: the next refresh shows it
    st.markdown(f"**{t('Greedy captions of validation images')}** · " + t("step {step:,}", step=sample.step))
    images = [base64.b64decode(item["image"]) for item in items]
    captions = [f"**{item['caption'] or t('(empty)')}**  \n" + t("true: {caption}", caption=item["references"][0])
                for item in items]
    _grid(images, captions)


def _pick_scene() -> None:
    st.session_state["caption_scene_seed"] = random.randrange(1_000_000)


def _forget_scene() -> None:
    st.session_state.pop("caption_scene_seed", None)


def media(source: dict) -> None:
    from core.data.media import open_image
    from core.tasks.captioning.caption import load_captioner, scene

    with st.spinner(t("Loading the model…")):
        captioner = load_captioner(source["run_id"], source.get("which", "best"))
    st.caption(t("Image captioning · vocabulary of {words} words · input {size}px · captions of up to {length} words",
                 words=len(captioner.vocab), size=captioner.image_size, length=captioner.max_length))
    upload = st.file_uploader(t("An image to caption"), type=IMAGE_TYPES, key="caption_upload", on_change=_forget_scene)
    left, right = st.columns([1, 2])
    left.button(t("Try a generated scene"), icon=":material/shuffle:", key="caption_scene", on_click=_pick_scene)
    width = right.slider(t("Beam width"), 1, 10, 3, key="caption_beam_width",
                         help=t("How many partial captions beam search keeps at each step; 1 is greedy decoding"))
    alpha = right.slider(t("Length normalisation"), 0.0, 1.5, 0.7, step=0.1, key="caption_alpha",
                         help=t("Beams are ranked by log-probability / (words + 1) ^ this; 0 ranks by log-probability"))

    truth, name = None, None
    if "caption_scene_seed" in st.session_state:
        seed = st.session_state["caption_scene_seed"]
        image, truth = scene(seed, captioner.image_size)
        name = t("generated scene {seed}", seed=seed)
    elif upload is not None:
        try:
            image, name = open_image(upload.getvalue(), upload.name), upload.name
        except LabError as exc:
            st.error(t_core(str(exc)), icon=":material/broken_image:")
            return
    else:
        st.info(t("Upload a picture, or try a generated scene."), icon=":material/upload:")
        return

    with st.container(border=True):
        shown, words = st.columns([1, 2])
        shown.image(image, caption=name, width="stretch")
        greedy = captioner.greedy(image)
        words.markdown(f"**{greedy['caption'] or t('(empty caption)')}**")
        words.caption(t("greedy decoding · log-probability {value:.2f}", value=greedy["log_prob"]))
        beams = captioner.beam(image, width=width, alpha=alpha)
        words.dataframe([{"caption": b["caption"], "score": round(b["score"], 3), "log-prob": round(b["log_prob"], 3)}
                         for b in beams], hide_index=True, width="stretch",
                        column_config=table_columns(["caption", "score", "log-prob"]))
        if truth:
            words.caption(t("True captions: {captions}", captions=" · ".join(truth)))
