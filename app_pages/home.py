"""Home: what the lab is, a one-click first run, recent runs and the device. Paints before torch loads."""

import streamlit as st

from ui.sparkline import sparkline_svg
from ui.resources import RUNS_PAGE, TRAIN_PAGE, duration, show_error, status_badge, store

st.title("Deep Learning Lab")
st.markdown("Train real neural networks from your browser, watch them learn live, compare your runs and "
            "try the models on your own pictures and videos. Everything runs on this machine: on its GPU "
            "when it has one, on the CPU otherwise.")

left, right, _ = st.columns([1.3, 1, 2])
if left.button("Train your first model", type="primary", icon=":material/rocket_launch:",
               help="Starts the digits-cnn preset (a small CNN on 1,797 handwritten digits; seconds on a CPU) "
                    "and opens its live view"):
    from core import jobs
    from core.config import preset
    try:
        run_id = jobs.submit(preset("digits-cnn"))
    except Exception as exc:  # e.g. a store that cannot be written
        show_error(exc)
    else:
        st.switch_page(TRAIN_PAGE, query_params={"run": run_id})
right.page_link(TRAIN_PAGE, label="Configure a run", icon=":material/tune:")

st.subheader("Recent runs")
runs = store().list_runs()
if runs.empty:
    st.info("No runs yet. Press **Train your first model**: it finishes in well under a minute.",
            icon=":material/lightbulb:")
else:
    recent = runs.head(6)
    summaries = {run_id: run.summary for run_id, run in store().get_runs(list(recent.id)).items()}
    watched = {run_id: summary.get("best_metric") or "val_acc" for run_id, summary in summaries.items()}
    curves = store().metrics(list(recent.id), keys=sorted(set(watched.values()) or {"val_acc"}))
    by_run = {run_id: group[group.key == watched.get(run_id, "val_acc")].value.tolist()
              for run_id, group in curves.groupby("run_id")}
    columns = st.columns(3)
    for index, row in enumerate(recent.itertuples()):
        with columns[index % 3].container(border=True):
            st.markdown(f"**{row.name}** {status_badge(row.status)}")
            st.caption(f"{row.dataset} · {row.model} · {duration(row.duration_s)}")
            metric = watched.get(row.id, "val_acc")
            best = summaries.get(row.id, {}).get(f"best_{metric}")
            label = "validation accuracy" if metric == "val_acc" else metric.replace("val_", "validation ").replace("_", " ")
            value = "–" if best is None else (f"{best:.1%}" if metric.endswith("acc") else f"{best:.4g}")
            st.metric(f"best {label}", value)
            line = sparkline_svg(by_run.get(row.id, []))
            if line:
                st.image(line, caption=f"{label} by epoch")
            st.page_link(TRAIN_PAGE, label="Open", icon=":material/open_in_new:", query_params={"run": row.id})
    st.page_link(RUNS_PAGE, label=f"Compare all {len(runs)} runs", icon=":material/stacked_line_chart:")
