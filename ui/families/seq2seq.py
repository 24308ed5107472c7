"""The pages' pieces for sequence-to-sequence runs: on the Media page a source to type, its decoding (greedy
or beam search), the attention heatmap (source characters × output characters) and the beam's alternatives.
Decoding lives in core.tasks.seq2seq.translate; the Train form is the generic one."""

from __future__ import annotations

import streamlit as st

from core.errors import LabError
from ui.i18n import t, t_core
from ui.resources import show_error


def _shown(char: str) -> str:
    return {" ": "␣", "<eos>": "⏹"}.get(char, char)


def media(source: dict) -> None:
    from core.tasks.checkpoints import load_run_model
    from core.tasks.seq2seq.translate import MAX_BEAM, translate

    try:
        run = load_run_model(source["run_id"], source.get("which", "best"))
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
    if result.cut:
        st.warning(t("The input was cut to its first {count} characters, the longest source this run trained on.",
                     count=len(result.source)), icon=":material/content_cut:")
    if result.unknown:
        st.warning(t("Characters this run never saw, read as unknown: {chars}",
                     chars=", ".join(repr(c) for c in result.unknown)), icon=":material/help:")
    st.subheader(t("Output"), anchor=False)
    st.code(result.text or " ", language=None)
    st.caption(t("log-probability {score:.3f}", score=result.score))
    attention_heatmap(result, key="s2s_attention")
    st.subheader(t("The beam's alternatives"), anchor=False)
    st.dataframe([{t("Output"): text, t("Log-probability"): round(score, 4)} for text, score in result.alternatives],
                 hide_index=True)


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
