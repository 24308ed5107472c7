"""The shared sidebar: the compute device and the job queue (running and queued runs)."""

from __future__ import annotations

import streamlit as st

from core.store.records import ACTIVE_STATUSES
from ui.i18n import language, language_control, t
from ui.resources import TRAIN_PAGE, status_badge, store


@st.cache_data(ttl=5, show_spinner=False)
def _device_lines(lang: str) -> list[str]:
    """`lang` keys the cache: the lines are drawn in the language `t` reads."""
    import os
    from core.sysinfo import gpus
    lines = [f"**GPU {g.index}** {g.name}  \n{g.memory_used_mb / 1024:.1f} / {g.memory_total_mb / 1024:.0f} GiB"
             + (t(", {pct:.0f}% busy", pct=g.utilisation_pct) if g.utilisation_pct is not None else "")
             for g in gpus()]
    if lines:
        return lines
    # core.sysinfo.cpu_summary() says the same in English; the words are put together here to translate them
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    cpu = t("CPU, {threads} threads", threads=os.cpu_count() or 1) + (t(" (load {load:.1f})", load=load)
                                                                      if load is not None else "")
    return [f"**{cpu}**  \n" + t("no GPU found: training runs on the CPU")]


def render_sidebar() -> None:
    with st.sidebar:
        language_control()  # on every page, so the choice carries across pages
        st.caption(t("Compute"))
        for line in _device_lines(language()):
            st.markdown(f":material/memory: {line}")
        _queue()


def _queue() -> None:
    # Drawn on every rerun, not on a timer: a timed fragment in the sidebar can race a page switch
    # and break the browser's page (Streamlit: "Bad delta path index"). The Train page polls its run.
    st.caption(t("Job queue"))
    active = list(store().get_runs(statuses=ACTIVE_STATUSES).values())  # no pandas: first paint
    if not active:
        st.markdown(t("Nothing running."))
        return
    for run in active:
        st.page_link(TRAIN_PAGE, label=f"{run.name} · {t(run.status)}", query_params={"run": run.id},
                     icon=":material/play_circle:" if run.status == "running" else ":material/schedule:")
    running = sum(run.status == "running" for run in active)
    st.markdown(status_badge("running") + f" {running} · " + status_badge("queued") + f" {len(active) - running}")
