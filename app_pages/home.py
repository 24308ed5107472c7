"""Home: what the lab is, a one-click first run, recent runs and the device. Paints before torch loads."""

import streamlit as st

from ui.i18n import t
from ui.sparkline import run_card
from core.store.records import watched_metric
from ui.resources import RUNS_PAGE, TRAIN_PAGE, show_error, store

st.title(t("Deep Learning Lab"))
st.markdown(t("Train real neural networks from your browser, watch them learn live, compare your runs and "
              "try the models on your own pictures and videos. Everything runs on this machine: on its GPU "
              "when it has one, on the CPU otherwise."))

left, right, _ = st.columns([1.1, 1, 2.4], vertical_alignment="center")
if left.button(t("Train your first model"), type="primary", icon=":material/rocket_launch:",
               help=t("Starts the digits-cnn preset (a small CNN on 1,797 handwritten digits; seconds on a CPU) "
                      "and opens its live view")):
    from core import jobs
    from core.presets import preset
    try:
        run_id = jobs.submit(preset("digits-cnn"))
    except Exception as exc:  # e.g. a store that cannot be written
        show_error(exc)
    else:
        st.switch_page(TRAIN_PAGE, query_params={"run": run_id})
right.page_link(TRAIN_PAGE, label=t("Configure a run"), icon=":material/tune:")

st.subheader(t("Recent runs"))
recent = store().get_runs(limit=6)  # no pandas on the first page: it paints before the heavy imports
if not recent:
    st.info(t("No runs yet. Press **Train your first model**: it finishes in well under a minute."),
            icon=":material/lightbulb:")
else:
    watched = {run_id: watched_metric(run.summary) for run_id, run in recent.items()}
    curves = store().metric_series(list(recent), sorted(set(watched.values())))
    columns = st.columns(3)
    for index, run in enumerate(recent.values()):
        metric = watched[run.id]
        with columns[index % 3].container(border=True):
            # one markdown element per card, not six widgets: the browser draws the page about 0.5 s sooner
            st.markdown(run_card(run, metric, curves.get(run.id, {}).get(metric, [])), unsafe_allow_html=True)
            st.page_link(TRAIN_PAGE, label=t("Open"), icon=":material/open_in_new:", query_params={"run": run.id})
    count = store().count_runs()
    st.page_link(RUNS_PAGE, label=t("Compare all {count} runs", count=count) if count > 1 else t("Compare runs"),
                 icon=":material/stacked_line_chart:")
