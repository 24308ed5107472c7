"""Train: configure a run and launch it, or watch one (the run id lives in the URL)."""

import streamlit as st

from ui.forms import ensure_initialised, load_into_form
from ui.i18n import t
from ui.live import configure_view, watch_view

st.title(t("Train"))

run_id = st.query_params.get("run")
preset_param = st.query_params.get("preset")
if preset_param and st.session_state.get("_preset_param") != preset_param:  # "Train this" from Concepts
    from core.presets import PRESETS, preset
    if preset_param in PRESETS:
        st.session_state["preset_choice"] = preset_param
        load_into_form(preset(preset_param))
    st.session_state["_preset_param"] = preset_param
ensure_initialised()

if run_id and st.session_state.get("_watched") != run_id:  # a new run in the URL: show it
    st.session_state["_watched"] = run_id
    st.session_state["train_mode"] = "Watch"
if "_next_mode" in st.session_state:  # a button asked for the other view on the previous run
    st.session_state["train_mode"] = st.session_state.pop("_next_mode")
st.session_state.setdefault("train_mode", "Watch" if run_id else "Configure")
views = {"Configure": t("Configure"), "Watch": t("Watch")}  # the values stay: session state and links use them
mode = st.segmented_control(t("View"), list(views), format_func=views.get, key="train_mode",
                            label_visibility="collapsed", required=True)

if mode == "Watch" and run_id:
    watch_view(run_id)
elif mode == "Watch":
    st.info(t("No run selected. Launch one from **Configure**, or open one from the Runs page or the job queue."))
else:
    configure_view()
