"""Text classification on the pages: a .csv or .zip upload on the Train form and a look at the classes; on a
finished run the confusion matrix (click a cell for the texts behind it) and per-class scores; on the Media page
typed or uploaded text, the top classes and each token's share of the decision, highlighted. Classifying and
attributing live in core.tasks.text_classification."""

from __future__ import annotations

import html
import json

import streamlit as st

from core.errors import LabError
from ui.charts import class_counts_figure, top_k_figure
from ui.families.classification import confusion_section
from ui.i18n import t, t_core
from ui.resources import MEDIA_DEVICE, TRAIN_PAGE, data_summary, show_error, skipped_box

UPLOAD_KEY = "tc_upload"
MAX_UPLOAD_CHARS = 20_000


# ---- Train page ---------------------------------------------------------------------------------------

def _save_upload() -> None:
    """Keep an uploaded .csv or .zip under LAB_HOME/cache/uploads and point data.path at it."""
    from core.data.uploads import keep_upload, keep_zip_upload
    from ui.forms import PREFIX
    upload = st.session_state.get(UPLOAD_KEY)
    if upload is None:
        return
    try:
        data = upload.getvalue()
        path = keep_zip_upload(data, upload.name) if upload.name.lower().endswith(".zip") else \
            keep_upload(data, upload.name)
    except LabError as exc:
        st.session_state["tc_upload_error"] = t_core(str(exc))
        return
    st.session_state.pop("tc_upload_error", None)
    st.session_state[PREFIX + "data.path"] = str(path)


def form_extras() -> None:
    from ui.forms import PREFIX
    name = st.session_state.get(PREFIX + "data.name")
    if name == "text-csv":
        st.file_uploader(t("Upload a CSV with the columns text and label…"), type=["csv"], key=UPLOAD_KEY,
                         on_change=_save_upload)
    elif name == "text-folder":
        st.file_uploader(t("Upload a .zip of train/<class>/*.txt files…"), type=["zip"], key=UPLOAD_KEY,
                         on_change=_save_upload)
    else:
        return
    if st.session_state.get("tc_upload_error"):
        st.error(st.session_state["tc_upload_error"], icon=":material/error:")


@st.cache_data(show_spinner=False, max_entries=8)  # the caller's spinner speaks the page's language
def _describe(data_json: str, seed: int) -> dict:
    from core.config import DataConfig
    from core.data.labelled_text import describe
    return describe(DataConfig(**json.loads(data_json)), seed)


def preview(config) -> None:
    info = data_summary(config, _describe, ask_for_path=t("Upload a file or give a path to see the texts and their "
                                                          "classes."), reading=t("Reading the texts…"))
    if info is None:
        return
    st.markdown("**" + t("{classes} classes · {train} training and {val} validation texts",
                         classes=len(info["classes"]), train=sum(info["train"]), val=sum(info["val"])) + "**")
    st.plotly_chart(class_counts_figure(info["classes"], info["train"], info["val"]), key="tc_counts")
    skipped_box(t("{count} examples skipped", count=info["skipped_count"]), info["skipped_count"], info["skipped"])
    if info["example"]:
        text, k = info["example"]
        st.caption(t("An example of {label}:", label=info["classes"][k]))
        st.code(text[:600], language=None, wrap_lines=True)


# ---- a finished run -------------------------------------------------------------------------------------

def results(run) -> None:
    """The best checkpoint on the validation set: the confusion matrix (click a cell for its texts), per class."""
    from core.tasks.text_classification.evaluation import evaluate_run
    from ui.toolkit import tools
    st.subheader(t("Validation results"), anchor=False)
    data = (run.summary or {}).get("data") or {}
    count = int(data.get("skipped") or 0)
    skipped_box(t("{count} examples skipped", count=count), count, list(data.get("skipped_notes") or []))
    try:
        with st.spinner(t("Evaluating the best checkpoint on the validation set…")):
            report = evaluate_run(run.id, "best")
    except Exception as exc:  # noqa: BLE001
        show_error(exc)
        tools(run)
        return
    picked_cell = confusion_section(report, key=f"tc-cm-{run.id}", caption=t("Click a cell to see the texts behind it."))
    if picked_cell:
        try:
            _cell_texts(run, report, *picked_cell)
        except Exception as exc:  # noqa: BLE001  (the data set may have changed since training)
            show_error(exc)
    tools(run)


def _cell_texts(run, report, true_name: str, pred_name: str) -> None:
    from core.tasks.text_classification.evaluation import val_texts
    wrong = report.misclassified
    picked = wrong[(wrong["true"] == true_name) & (wrong["predicted"] == pred_name)]
    if true_name == pred_name:
        st.info(t("{label}: the diagonal holds the texts classified correctly.", label=true_name))
    elif picked.empty:
        st.info(t("No {true} text was classified as {predicted}.", true=true_name, predicted=pred_name))
    else:
        st.markdown("**" + t("{count} text(s) of {true} classified as {predicted}", count=len(picked),
                             true=true_name, predicted=pred_name) + "**")
        texts = val_texts(run.id, picked["index"].tolist()[:10])
        for text, confidence in zip(texts, picked["confidence"].tolist()):
            st.caption(t("{confidence:.0%} sure", confidence=confidence))
            st.code(text[:800], language=None, wrap_lines=True)


# ---- Media --------------------------------------------------------------------------------------------------

def highlighted(pieces, colour_scale: float) -> str:
    """HTML of the text with each token's background green (for the class) or red (against), by |score|."""
    spans = []
    for piece, score in pieces:
        shown = html.escape(piece)  # the div keeps line breaks (pre-wrap)
        if score is None or colour_scale <= 0:
            spans.append(shown)
            continue
        alpha = min(1.0, abs(score) / colour_scale) * 0.85
        rgb = "22,163,74" if score > 0 else "220,38,38"
        spans.append(f'<span title="{score:+.4f}" style="background: rgba({rgb},{alpha:.2f}); border-radius: 3px">'
                     f"{shown}</span>")
    return ('<div style="font-family: ui-monospace, monospace; font-size: 0.9rem; line-height: 1.7; '
            'white-space: pre-wrap">' + "".join(spans) + "</div>")


def show_text_result(run, text: str, *, key: str, explain: bool = True) -> None:
    """The top classes of `text` and, with `explain`, its tokens highlighted by integrated gradients."""
    from core.tasks.text_classification.predict import classify_text, explain_text
    try:
        prediction = classify_text(run, text, top_k=5)
    except LabError as exc:
        st.info(t_core(str(exc)), icon=":material/edit:")
        return
    if prediction.cut:
        st.warning(t("The text was cut to its first {count} tokens, this run's window; {dropped} dropped.",
                     count=prediction.tokens, dropped=prediction.cut), icon=":material/content_cut:")
    if prediction.unknown:
        st.caption(t("{count} of {total} tokens were never seen in training and read as unknown.",
                     count=prediction.unknown, total=prediction.tokens))
    left, right = st.columns([2, 3], gap="large")
    with left:
        st.subheader(t("Top classes"), anchor=False)
        st.plotly_chart(top_k_figure(prediction.top), key=f"{key}-top")
    if not explain:
        return
    with right:
        st.subheader(t("Which tokens decided it"), anchor=False)
        classes = run.metadata["classes"]
        target = st.selectbox(t("Explain the class"), classes, index=classes.index(prediction.top[0][0]),
                              key=f"{key}-target")
        try:
            with st.spinner(t("Integrated gradients over the tokens…")):
                why = explain_text(run, text, target=target)
        except LabError as exc:
            st.error(t_core(str(exc)), icon=":material/error:")
            return
        scale = max((abs(s) for s in why.scores), default=0.0)
        st.caption(t("Green tokens speak for {label}, red ones against it; the stronger the colour, the larger the "
                     "integrated-gradients attribution (hover a token for its value).", label=why.target))
        st.markdown(highlighted(why.pieces(), scale), unsafe_allow_html=True)
        top_tokens = sorted(zip(why.scores, why.spans), key=lambda p: -p[0])[:8]
        st.caption(t("Strongest evidence: {tokens}", tokens=", ".join(
            f"“{why.text[a:b]}” {s:+.2f}" for s, (a, b) in top_tokens if s > 0)))


def _read_text_upload() -> None:
    """Put an uploaded .txt into the text box (runs before the box is drawn again)."""
    upload = st.session_state.get("tc_file")
    if upload is None:
        return
    try:
        st.session_state["tc_text"] = upload.getvalue().decode("utf-8-sig")[:MAX_UPLOAD_CHARS]
        st.session_state.pop("tc_file_error", None)
    except UnicodeDecodeError:
        st.session_state["tc_file_error"] = t("{name} is not UTF-8 text; save it as UTF-8 and upload it again.",
                                              name=upload.name)


def media(source: dict) -> None:
    from core.tasks.checkpoints import load_run_model
    try:
        run = load_run_model(source["run_id"], source.get("which", "best"), device=MEDIA_DEVICE)
    except LabError as exc:
        st.error(t_core(str(exc)), icon=":material/error:")
        return
    meta = run.metadata
    st.caption(t("Text classification · {count} classes · window of {window} tokens", count=len(meta["classes"]),
                 window=meta["max_len"]) + " · " + ", ".join(meta["classes"][:12]))
    examples = meta.get("examples") or [["", ""]]
    if "tc_text" not in st.session_state:
        st.session_state["tc_text"] = examples[0][0]
    text = st.text_area(t("Text to classify"), key="tc_text", height=140, max_chars=MAX_UPLOAD_CHARS,
                        help=t("An example from the validation set is filled in; its class is {label}.",
                               label=examples[0][1]))
    st.file_uploader(t("…or upload a .txt file"), type=["txt"], key="tc_file", on_change=_read_text_upload)
    if st.session_state.get("tc_file_error"):
        st.error(st.session_state["tc_file_error"], icon=":material/error:")
    try:
        show_text_result(run, text, key="tc_media")
    except Exception as exc:  # noqa: BLE001
        show_error(exc)


def concept_demo(lang: str) -> None:
    """The concept page's demo: the reader's finished text classification run on a text they type."""
    from core.inference import list_model_sources
    from core.tasks.checkpoints import load_run_model
    sources = [s for s in list_model_sources() if s["task"] == "text_classification"]
    if not sources:
        st.info(t("Train a text classifier first (a minute on a CPU): its prediction and the tokens behind it "
                  "appear here."), icon=":material/school:")
        st.page_link(TRAIN_PAGE, label=t("Train this: {preset}", preset="docstrings-bag"),
                     icon=":material/play_arrow:", query_params={"preset": "docstrings-bag"})
        return
    labels = [s["label"] for s in sources]
    chosen = st.selectbox(t("Run"), labels, key=f"demo.tc.run.{lang}")
    source = sources[labels.index(chosen)]
    try:
        run = load_run_model(source["run_id"], source.get("which", "best"), device=MEDIA_DEVICE)
    except LabError as exc:
        st.error(t_core(str(exc)), icon=":material/error:")
        return
    example = (run.metadata.get("examples") or [[""]])[0][0]
    text = st.text_area(t("Text to classify"), example, key=f"demo.tc.text.{lang}.{source['run_id']}", height=100)
    try:
        show_text_result(run, text, key=f"demo-tc-{lang}")
    except Exception as exc:  # noqa: BLE001
        show_error(exc)
