"""The pages' pieces for character language models: a .txt upload on the Train form, a look at the text,
the latest generated sample while a run trains, and on the Media page streamed generation plus (for GPT
runs) where the model attends. Generation and attention maps are computed in core.tasks.language_model.generate."""

from __future__ import annotations

import json
import warnings

import streamlit as st

from core.errors import LabError
from ui.i18n import t, t_core
from ui.resources import MEDIA_DEVICE, data_summary, show_error
from core.tasks import validate

UPLOAD_KEY = "lm_text_upload"
HEATMAP_CHARS = 64  # characters on each axis of the attention heatmap: more would be unreadable


def _shown(char: str) -> str:
    """A character as an axis label or vocabulary entry: visible even when it is white space."""
    return {"\n": "⏎", " ": "␣", "\t": "⇥"}.get(char, char)


# ---- Train page ---------------------------------------------------------------------------------------

def _save_text_upload() -> None:
    """Keep an uploaded .txt under LAB_HOME/cache/uploads and point data.path at it (runs before redraw)."""
    from core.data.text import save_upload
    from ui.forms import PREFIX
    upload = st.session_state.get(UPLOAD_KEY)
    if upload is None:
        return
    try:
        path = save_upload(upload.getvalue(), upload.name)
    except LabError as exc:
        st.session_state["lm_upload_error"] = str(exc)
        return
    st.session_state.pop("lm_upload_error", None)
    st.session_state[PREFIX + "data.path"] = str(path)


def form_extras() -> None:
    from ui.forms import PREFIX
    name = st.session_state.get(PREFIX + "data.name")
    if name == "tinyshakespeare":
        from core.data.text import SHAKESPEARE_URL, shakespeare_path
        st.caption(t("Downloaded on first use from {url}. Offline, save it as `{path}`.", url=SHAKESPEARE_URL,
                     path=shakespeare_path()))
    from core.data import dataset_info
    if name is None or not dataset_info(name).needs_path:
        return
    st.file_uploader(t("Upload a plain-text file (.txt, UTF-8)…"), type=["txt"], key=UPLOAD_KEY,
                     on_change=_save_text_upload)
    if st.session_state.get("lm_upload_error"):
        st.error(st.session_state["lm_upload_error"], icon=":material/error:")
    # the page draws the data.path field ("…or a file on the server") right below


@st.cache_data(show_spinner=False, max_entries=8)  # the caller's spinner speaks the page's language
def _describe(data_json: str) -> dict:
    from core.config import DataConfig
    from core.data.text import describe_corpus
    return describe_corpus(DataConfig(**json.loads(data_json)))


@st.cache_data(show_spinner=False, max_entries=16)
def _parameter_count(config_json: str, vocab_size: int) -> int:
    from core.config import RunConfig
    from core.options import resolve
    from core.tasks import model_parameters
    from core.tasks.language_model import OPTIONS
    config = RunConfig.from_json(config_json)
    context = resolve(config.task_options, OPTIONS)["context"]
    return model_parameters(config, {"vocab": ["?"] * vocab_size, "context": context})["total"]


def preview(config) -> None:
    info = data_summary(config, lambda data_json, seed: _describe(data_json),  # the text's split needs no seed
                        ask_for_path=t("Upload a .txt file or give a path to see what the model will read."),
                        reading=t("Reading the text…"),
                        problem=lambda message: st.warning(message, icon=":material/cloud_off:"))  # often offline
    if info is None:
        return
    with st.container(border=True):
        st.subheader(t("Text"), anchor=False)
        c1, c2, c3 = st.columns(3)
        c1.metric(t("Characters"), f"{info['chars']:,}")
        c2.metric(t("Vocabulary"), len(info["vocab"]))
        c3.metric(t("Validation"), f"{info['val']:,}", help=t("The end of the text, never trained on"))
        st.caption(t_core(info['source']) + ". "  # core's line, translated by its template
                   + t("Bits per character of a model that knows nothing: {uniform:.2f}; that knows only character "
                       "frequencies: {unigram:.2f}.", uniform=info["uniform_bpc"], unigram=info["unigram_bpc"]))
        st.code(" ".join(_shown(c) for c in info["vocab"]), language=None, wrap_lines=True)
        st.code(info["excerpt"], language=None, wrap_lines=True)  # the text itself: data, shown as it is
    try:
        validate(config)
        params = _parameter_count(config.to_json(), len(info["vocab"]))
    except (LabError, ValueError):
        return
    st.caption(t("Model: {name}, {params:,} parameters", name=config.model.name, params=params))


# ---- live view ---------------------------------------------------------------------------------------

def live(run, folder) -> None:
    from core.engine.samples import list_samples
    samples = list_samples(folder, "text")
    if not samples:
        st.caption(t("A generated sample appears here as soon as training starts."))
        return
    latest = samples[-1]
    st.markdown("**" + t("Generated at step {step:,}", step=latest.step) + "**")
    st.code(latest.load(), language=None, wrap_lines=True)
    if len(samples) > 1:
        with st.expander(t("Earlier samples ({count})", count=len(samples) - 1)):
            steps = [s.step for s in samples]
            step = st.select_slider(t("Step"), steps, value=steps[0], key=f"lm_sample_step_{getattr(run, 'id', '')}")
            chosen = next(s for s in samples if s.step == step)
            st.code(chosen.load(), language=None, wrap_lines=True)


def results(run) -> None:
    """A finished run's Tools section (ui/toolkit.py): export and compress the model."""
    from ui.toolkit import tools
    tools(run)


# ---- Media page ----------------------------------------------------------------------------------------

def _fenced(prompt: str, stream, collected: list[str]):
    """Stream as one code block (new lines kept, no markdown), remembering the plain text in `collected`."""
    fence = "~~~~~~"
    yield f"{fence}text\n{prompt}"
    for chunk in stream:
        collected.append(chunk)
        yield chunk
    yield f"\n{fence}"


def media(source: dict) -> None:
    from core.tasks.checkpoints import load_run_model
    from core.tasks.language_model.generate import MAX_LENGTH, check_prompt, generate

    try:
        # "auto": a GPU when there is one; the baby GPT writes ~50x faster there than on a CPU
        run = load_run_model(source["run_id"], source.get("which", "best"), device=MEDIA_DEVICE)
    except LabError as exc:
        st.error(t_core(str(exc)), icon=":material/error:")
        return
    meta = run.metadata
    data = meta.get("data") or {}
    st.caption(f"{run.config.model.name} · "
               + t("{count} characters in the vocabulary · context {context} · trained on {train:,} characters of "
                   "{data}", count=len(meta["vocab"]), context=meta["context"], train=data.get("train", 0),
                   data=run.config.data.name))

    prompt = st.text_area(t("Prompt"), key="lm_prompt", placeholder=t("Leave empty to start from a new line"),
                          help=t("The model continues this text; characters it never saw are dropped"))
    c1, c2, c3, c4 = st.columns(4)
    temperature = c1.slider(t("Temperature"), 0.0, 2.0, 0.8, 0.05, key="lm_temperature",
                            help=t("Lower: safer, more repetitive. 0 always picks the most likely character"))
    top_k = c2.number_input(t("Top-k (0 = all)"), 0, len(meta["vocab"]), 0, key="lm_top_k",
                            help=t("Sample only among the k most likely next characters"))
    length = c3.number_input(t("Length"), 1, MAX_LENGTH, 300, step=50, key="lm_length",
                             help=t("Characters to generate"))
    seed = c4.number_input(t("Seed"), 0, 2**31 - 1, 0, key="lm_seed", help=t("The same seed gives the same text"))

    output_key = f"lm_output:{run.run_id}:{run.which}"
    if st.button(t("Generate"), key="lm_generate", type="primary", icon=":material/edit_note:"):
        try:
            check = check_prompt(run, prompt)
            if check.dropped:
                st.warning(check.message, icon=":material/warning:")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the dropped characters are shown above
                stream = generate(run, prompt, length=int(length), temperature=float(temperature),
                                  top_k=int(top_k), seed=int(seed))
            collected: list[str] = []
            with st.container(border=True):
                st.write_stream(_fenced(check.text, stream, collected))
            st.session_state[output_key] = check.text + "".join(collected)
        except Exception as exc:  # noqa: BLE001  shown, never a traceback
            show_error(exc)
    elif output_key in st.session_state:
        with st.container(border=True):
            st.code(st.session_state[output_key], language=None, wrap_lines=True)

    if getattr(run.model, "has_attention", False):
        _attention_section(run, prompt or st.session_state.get(output_key, ""))


def _attention_section(run, default_text: str) -> None:
    from core.tasks.language_model.generate import attention_map
    import plotly.graph_objects as go

    st.subheader(t("Where the model attends"), anchor=False)
    st.caption(t("Each row is a position in the text; its colours show how much that position's query attends to "
                 "every earlier character (never later ones: the mask is causal)."))
    if not st.session_state.get("lm_attn_text"):
        st.session_state["lm_attn_text"] = default_text[-HEATMAP_CHARS:]
    text = st.text_input(t("Text to inspect"), key="lm_attn_text", max_chars=1000,
                         help=t("Its last {count} characters are shown", count=HEATMAP_CHARS))
    try:
        amap = attention_map(run, text[-HEATMAP_CHARS:])
    except LabError as exc:
        st.info(t_core(str(exc)), icon=":material/info:")
        return
    except Exception as exc:  # noqa: BLE001
        show_error(exc)
        return
    c1, c2 = st.columns(2)
    layers = [t("layer {n}", n=i + 1) for i in range(amap.layers)]  # names made now, not in format_func
    heads = {"mean": t("mean of all heads")} | {h: t("head {n}", n=h + 1) for h in range(amap.heads)}
    layer = c1.selectbox(t("Layer"), range(amap.layers), format_func=layers.__getitem__, key="lm_attn_layer")
    head = c2.selectbox(t("Head"), list(heads), key="lm_attn_head", format_func=heads.get)
    weights = amap.weights[layer].mean(dim=0) if head == "mean" else amap.weights[layer, head]  # (T, T)
    labels = [_shown(c) for c in amap.chars]
    positions = list(range(len(labels)))  # positions, not characters: repeated characters stay apart
    figure = go.Figure(go.Heatmap(z=weights.numpy(), x=positions, y=positions, colorscale="Blues", zmin=0,
                                  hovertemplate=t("query %{y} attends to key %{x}: %{z:.3f}") + "<extra></extra>"))
    axis = dict(tickmode="array", tickvals=positions, ticktext=labels, tickangle=0)
    figure.update_layout(xaxis=dict(title=t("attended character (key)"), **axis),
                         yaxis=dict(title=t("position (query)"), autorange="reversed", **axis),
                         height=min(720, 220 + 9 * len(labels)), margin=dict(l=10, r=10, t=10, b=10))
    st.plotly_chart(figure, key="lm_attention")


# ---- Runs page -------------------------------------------------------------------------------------------

def runs_extra(run_ids: list[str]) -> None:
    """The last sample of each selected run side by side: what the loss numbers read like."""
    from core.engine.samples import list_samples
    from core.paths import run_dir
    from ui.resources import store

    shown = []
    for run_id in run_ids[:4]:
        samples = list_samples(run_dir(run_id), "text")
        if samples:
            shown.append((store().get_run(run_id).name, run_id, samples[-1]))
    if not shown:
        return
    st.subheader(t("Generated text"), anchor=False)
    for column, (name, run_id, sample) in zip(st.columns(len(shown)), shown):
        column.markdown(f"**{name}** ({run_id[-4:]}) · " + t("step {step:,}", step=sample.step))
        column.code(sample.load(), language=None, wrap_lines=True)
