"""Image captioning on the pages: data preview, live sample captions, and captioning uploads on Media."""

from __future__ import annotations

import base64
import random

import streamlit as st

from core.errors import LabError

IMAGE_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"]  # what core.data.media decodes
PER_ROW = 4
UPLOAD_KEY = "captions_zip"


def form_extras() -> None:
    from ui.forms import PREFIX, save_zip_upload
    if st.session_state.get(PREFIX + "data.name") != "captions-folder":
        return
    st.file_uploader("Upload a .zip with captions.csv (columns image, caption) and the images…", type=["zip"],
                     key=UPLOAD_KEY, on_change=save_zip_upload, args=(UPLOAD_KEY,))
    # the page draws the data.path field ("…or a file, folder or .zip on the server") right below


@st.cache_data(show_spinner="Loading the captioned images…", max_entries=8)
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
    data = _preview(config.to_json())
    with st.container(border=True):
        st.subheader("Data preview", anchor=False)
        st.caption(f"{data['source']} · {data['train_images']:,} training images with {data['train_captions']:,} "
                   f"captions · {data['val_images']:,} validation images · {data['image_size']}px · vocabulary "
                   f"{data['vocab_size']} words" + (f" · {data['skipped']} unreadable images skipped"
                                                   if data["skipped"] else ""))
        _grid(data["images"], ["  \n".join(caps) for caps in data["captions"]])
    with st.container(border=True):
        st.subheader("Model", anchor=False)
        st.metric("parameters", f"{data['params']:,}")
        st.caption(f"Most frequent words: {', '.join(data['top_words'])}")


def live(run, folder) -> None:
    from core.engine.samples import latest_samples
    sample = latest_samples(folder).get("captions")
    if sample is None:
        return
    try:
        items = sample.load()["items"]
    except (OSError, ValueError, KeyError):
        return  # being written: the next refresh shows it
    st.markdown(f"**Greedy captions of validation images** · step {sample.step:,}")
    images = [base64.b64decode(item["image"]) for item in items]
    captions = [f"**{item['caption'] or '(empty)'}**  \ntrue: {item['references'][0]}" for item in items]
    _grid(images, captions)


def _pick_scene() -> None:
    st.session_state["caption_scene_seed"] = random.randrange(1_000_000)


def _forget_scene() -> None:
    st.session_state.pop("caption_scene_seed", None)


def media(source: dict) -> None:
    from core.data.media import open_image
    from core.tasks.captioning.caption import load_captioner, scene

    with st.spinner("Loading the model…"):
        captioner = load_captioner(source["run_id"], source.get("which", "best"))
    st.caption(f"Image captioning · vocabulary of {len(captioner.vocab)} words · input {captioner.image_size}px · "
               f"captions of up to {captioner.max_length} words")
    upload = st.file_uploader("An image to caption", type=IMAGE_TYPES, key="caption_upload", on_change=_forget_scene)
    left, right = st.columns([1, 2])
    left.button("Try a generated scene", icon=":material/shuffle:", key="caption_scene", on_click=_pick_scene)
    width = right.slider("Beam width", 1, 10, 3, key="caption_beam_width",
                         help="How many partial captions beam search keeps at each step; 1 is greedy decoding")
    alpha = right.slider("Length normalisation", 0.0, 1.5, 0.7, step=0.1, key="caption_alpha",
                         help="Beams are ranked by log-probability / (words + 1) ^ this; 0 ranks by log-probability")

    truth, name = None, None
    if "caption_scene_seed" in st.session_state:
        seed = st.session_state["caption_scene_seed"]
        image, truth = scene(seed, captioner.image_size)
        name = f"generated scene {seed}"
    elif upload is not None:
        try:
            image, name = open_image(upload.getvalue(), upload.name), upload.name
        except LabError as exc:
            st.error(str(exc), icon=":material/broken_image:")
            return
    else:
        st.info("Upload a picture, or try a generated scene.", icon=":material/upload:")
        return

    with st.container(border=True):
        shown, words = st.columns([1, 2])
        shown.image(image, caption=name, width="stretch")
        greedy = captioner.greedy(image)
        words.markdown(f"**{greedy['caption'] or '(empty caption)'}**")
        words.caption(f"greedy decoding · log-probability {greedy['log_prob']:.2f}")
        beams = captioner.beam(image, width=width, alpha=alpha)
        words.dataframe([{"caption": b["caption"], "score": round(b["score"], 3), "log-prob": round(b["log_prob"], 3)}
                         for b in beams], hide_index=True, width="stretch")
        if truth:
            words.caption("True captions: " + " · ".join(truth))
