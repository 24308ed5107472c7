"""The shared sidebar: the compute device and the job queue (running and queued runs)."""

from __future__ import annotations

import streamlit as st

from ui.resources import TRAIN_PAGE, status_badge, store


@st.cache_data(ttl=5, show_spinner=False)
def _device_lines() -> list[str]:
    from core.sysinfo import cpu_summary, gpus
    lines = [f"**GPU {g.index}** {g.name}  \n{g.memory_used_mb / 1024:.1f} / {g.memory_total_mb / 1024:.0f} GiB"
             + (f", {g.utilisation_pct:.0f}% busy" if g.utilisation_pct is not None else "") for g in gpus()]
    return lines or [f"**{cpu_summary()}**  \nno GPU found: training runs on the CPU"]


def render_sidebar() -> None:
    with st.sidebar:
        st.caption("Compute")
        for line in _device_lines():
            st.markdown(f":material/memory: {line}")
        _queue()


def _queue() -> None:
    # Drawn on every rerun, not on a timer: a timed fragment in the sidebar can race a page switch
    # and break the browser's page (Streamlit: "Bad delta path index"). The Train page polls its run.
    st.caption("Job queue")
    runs = store().list_runs()
    active = runs[runs.status.isin(["running", "queued"])] if not runs.empty else runs
    if active.empty:
        st.markdown("Nothing running.")
        return
    for row in active.itertuples():
        st.page_link(TRAIN_PAGE, label=f"{row.name} · {row.status}", query_params={"run": row.id},
                     icon=":material/play_circle:" if row.status == "running" else ":material/schedule:")
    st.markdown(status_badge("running") + f" {int((active.status == 'running').sum())} · "
                + status_badge("queued") + f" {int((active.status == 'queued').sum())}")
