"""Fine-tune on a finished run's page: open the Train form prefilled to start a new run from this run's weights
(core.tasks.finetune: a new head for new classes, optionally a frozen backbone or LoRA adapters)."""

from __future__ import annotations

import streamlit as st

from ui.i18n import t


def finetune_panel(run) -> None:
    """A short explanation and a button that puts this run's settings, with model.init_from = this run, into the
    Train form."""
    from core.tasks.finetune import start_from
    from ui.forms import load_clone
    st.caption(t("Start a new run with this run's weights: pick another data set and the head is replaced for its "
                 "classes. Freeze the backbone to train the head only, or train LoRA adapters (Hu et al. 2021): a "
                 "small share of the parameters, and the base weights stay exactly as they are."))
    if st.button(t("Fine-tune from this run"), key=f"finetune-{run.id}", icon=":material/model_training:"):
        load_clone(start_from(run.config, run.id))
        st.session_state["_next_mode"] = "Configure"  # the Train page shows its form on the next run of the script
        st.rerun()
