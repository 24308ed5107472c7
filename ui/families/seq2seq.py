"""The pages' pieces for sequence-to-sequence runs: on the Train form an upload of your own pairs (.tsv or .zip,
for "pairs-folder"); on a finished run the lines of those files that were skipped; on the Media page a source
to type, its decoding (greedy or beam search), the attention heatmap (source characters × output characters)
and the beam's alternatives. Decoding lives in core.tasks.seq2seq.translate; the Train form is the generic one."""

from __future__ import annotations

import streamlit as st

from core.errors import LabError
from ui.i18n import t, t_core
from ui.resources import MEDIA_DEVICE, data_summary, show_error, skipped_box

UPLOAD_KEY = "s2s_pairs_upload"
ERROR_KEY = "s2s_upload_error"


def _shown(char: str) -> str:
    return {" ": "␣", "<eos>": "■"}.get(char, char)  # ■ is in every font this app meets; ⏹ was a box


# ---- Train page and a finished run ----------------------------------------------------------------------

def _save_pairs_upload() -> None:
    """Keep an uploaded .tsv/.txt/.zip under the uploads and point data.path at it (runs before the redraw)."""
    from core.data.pairs import save_pairs_upload
    from ui.forms import PREFIX
    upload = st.session_state.get(UPLOAD_KEY)
    if upload is None:
        return
    try:
        path = save_pairs_upload(upload.getvalue(), upload.name)
    except LabError as exc:
        st.session_state[ERROR_KEY] = str(exc)
        return
    st.session_state.pop(ERROR_KEY, None)
    st.session_state[PREFIX + "data.path"] = str(path)


def form_extras() -> None:
    from core.data import dataset_info
    from ui.forms import PREFIX
    name = st.session_state.get(PREFIX + "data.name")
    if name is None or not dataset_info(name).needs_path:
        return
    st.file_uploader(t("Upload your pairs: one source<TAB>target per line (.tsv or .txt, UTF-8), or a .zip of such "
                       "files…"), type=["tsv", "txt", "zip"], key=UPLOAD_KEY, on_change=_save_pairs_upload)
    if st.session_state.get(ERROR_KEY):
        st.error(t_core(st.session_state[ERROR_KEY]), icon=":material/error:")
    # the page draws the data.path field ("…or a file on the server") right below


@st.cache_data(show_spinner=False, max_entries=8)  # the caller's spinner speaks the page's language
def _describe(data_json: str, seed: int) -> dict:
    import json

    from core.config import DataConfig
    from core.data.pairs import describe
    return describe(DataConfig(**json.loads(data_json)), seed)


def preview(config) -> None:
    """The Train form's right column: how many pairs, a few of them, and the lines of the user's files skipped."""
    import pandas as pd
    info = data_summary(config, _describe, ask_for_path=t("Upload a file or give a path to see its pairs."),
                        reading=t("Reading the pairs…"))
    if info is None:
        return
    st.markdown("**" + t("{train} training and {val} validation pairs", train=info["train"], val=info["val"]) + "**")
    st.caption(t("Sources of up to {src} characters, targets of up to {tgt}", src=info["longest_source"],
                 tgt=info["longest_target"]))
    st.dataframe(pd.DataFrame(info["examples"], columns=[t("source"), t("target")]), hide_index=True,
                 width="stretch")
    skipped_box(t("{count} lines of the pair files skipped", count=info["skipped"]), info["skipped"],
                info["skipped_notes"])


def results(run) -> None:
    """The lines of the user's pair files that gave no pair, with file:line and why (nothing for generated data)."""
    data = (run.summary or {}).get("data") or {}
    count = int(data.get("skipped") or 0)
    skipped_box(t("{count} lines of the pair files skipped", count=count), count, list(data.get("skipped_notes") or []))


# ---- Media page -------------------------------------------------------------------------------------------

def media(source: dict) -> None:
    from core.tasks.checkpoints import load_run_model
    from core.tasks.seq2seq.translate import MAX_BEAM, translate

    try:
        run = load_run_model(source["run_id"], source.get("which", "best"), device=MEDIA_DEVICE)
    except LabError as exc:
        st.error(t_core(str(exc)), icon=":material/error:")
        return
    meta = run.metadata
    examples = meta.get("examples") or [["", ""]]
    st.caption(t("Sequence to sequence · source of up to {src} characters · output of up to {tgt} characters",
                 src=meta.get("max_src", 0), tgt=meta.get("max_tgt", 0)))
    if "s2s_source" not in st.session_state:
        st.session_state["s2s_source"] = examples[0][0]
    left, right = st.columns([2, 1])
    text = left.text_input(t("Source to translate"), key="s2s_source", max_chars=1000,
                           help=t("For example: {example}", example=examples[0][0]))
    width = right.slider(t("Beam width"), 1, min(10, MAX_BEAM), 3, key="s2s_beam",
                         help=t("How many partial outputs beam search keeps at each step; 1 is greedy decoding"))
    if not text.strip():
        st.info(t("Type a source sequence to translate."), icon=":material/edit:")
        return
    try:
        result = translate(run, text, beam=width)
    except LabError as exc:
        st.error(t_core(str(exc)), icon=":material/error:")
        return
    except Exception as exc:  # noqa: BLE001
        show_error(exc)
        return
    translation_view(result, key="s2s_attention")
    st.subheader(t("The beam's alternatives"), anchor=False)
    st.dataframe([{t("Output"): text, t("Log-probability"): round(score, 4)} for text, score in result.alternatives],
                 hide_index=True)


def translation_view(result, *, key: str, heading: bool = True) -> None:
    """A Translation: notices (input cut, unknown characters), the output with its log-probability, and the
    attention heatmap (the Media page and the concept demo draw it alike)."""
    if result.cut:
        st.warning(t("The input was cut to its first {count} characters, the longest source this run trained on.",
                     count=len(result.source)), icon=":material/content_cut:")
    if result.unknown:
        st.warning(t("Characters this run never saw, read as unknown: {chars}",
                     chars=", ".join(repr(c) for c in result.unknown)), icon=":material/help:")
    if heading:
        st.subheader(t("Output"), anchor=False)
    else:
        st.markdown("**" + t("Output") + "**")
    st.code(result.text or " ", language=None)
    st.caption(t("log-probability {score:.3f}", score=result.score))
    attention_heatmap(result, key=key)


def attention_heatmap(result, *, key: str) -> None:
    """A Translation's attention as a source × output heatmap, under a subheader (also drawn by the concept demo)."""
    import plotly.graph_objects as go

    st.subheader(t("Where the decoder attends"), anchor=False)
    st.caption(t("Each row is an output character; its colours show how much attention it paid to each source "
                 "character (every row sums to 1)."))
    weights = result.attention.numpy()  # (T_out, T_in)
    rows = list(range(weights.shape[0]))
    cols = list(range(weights.shape[1]))
    figure = go.Figure(go.Heatmap(z=weights, x=cols, y=rows, colorscale="Blues", zmin=0, zmax=1,
                                  hovertemplate=t("output %{y} attends to source %{x}: %{z:.3f}") + "<extra></extra>"))
    figure.update_layout(
        xaxis=dict(title=t("source character"), tickmode="array", tickvals=cols,
                   ticktext=[_shown(c) for c in result.source], tickangle=0),
        yaxis=dict(title=t("output character"), tickmode="array", tickvals=rows,
                   ticktext=[_shown(c) for c in result.output_chars], autorange="reversed"),
        height=min(900, 200 + 16 * len(rows)), margin=dict(l=10, r=10, t=10, b=10))
    st.plotly_chart(figure, key=key)
