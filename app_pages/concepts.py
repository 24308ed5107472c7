"""Concepts: the ideas of modern deep learning, each with a short explanation and a run to try."""

import streamlit as st

from core.concepts import list_concepts
from ui.resources import TRAIN_PAGE

st.title("Concepts")
st.caption("The ideas behind modern deep learning. Where the lab has a preset for one, train it and watch it learn.")

query = st.text_input("Search", placeholder="e.g. attention, residual, GAN", label_visibility="collapsed")
concepts = [c for c in list_concepts() if query.lower() in (c.title + " " + c.summary).lower()]
if not concepts:
    st.info("No concept matches that search.")
for concept in concepts:
    with st.container(border=True):
        left, right = st.columns([5, 1], vertical_alignment="center")
        left.subheader(concept.title)
        left.write(concept.summary)
        left.caption(concept.reference)
        if concept.preset:
            right.page_link(TRAIN_PAGE, label="Train this", icon=":material/play_arrow:",
                            query_params={"preset": concept.preset})
        else:
            right.caption("Trainable soon")
