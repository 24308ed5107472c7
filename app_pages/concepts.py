"""Concepts: the ideas of modern deep learning, each with its explanation, formulas, a demo and a run to try.

`?concept=<id>` opens one concept (a link of its own); without it the page shows the map and the cards.
"""

import streamlit as st

from ui.concepts_view import load_catalogue, render_concept, render_explorer
from ui.i18n import language, t

lang = language()
concepts = load_catalogue()
if concepts is None:  # already said what is wrong
    st.stop()

concept_id = st.query_params.get("concept")
concept = next((c for c in concepts if c.id == concept_id), None)
if concept is not None:
    render_concept(concept, concepts, lang)
else:
    if concept_id:
        st.warning(t("There is no concept '{id}'.", id=concept_id[:60]), icon=":material/help:")
    render_explorer(concepts, lang)
