"""The shared sidebar: the compute device and the job queue (running and queued runs)."""

from __future__ import annotations

import streamlit as st

from core.store.records import ACTIVE_STATUSES
from ui.i18n import language, language_control, t
from ui.resources import TRAIN_PAGE, status_badge, store


@st.cache_data(ttl=5, show_spinner=False)
def device_rows(lang: str) -> list[tuple[str, float | None]]:
    """(line, memory in use as a fraction of the total, or None) per GPU, else one line for the CPU; read through
    NVML when nvidia-ml-py is installed, nvidia-smi otherwise (core.sysinfo). `lang` keys the cache: the lines
    are drawn in the language `t` reads."""
    import os
    from core.sysinfo import gpus
    rows = [(f"**GPU {g.index}** {g.name}  \n{g.memory_used_mb / 1024:.1f} / {g.memory_total_mb / 1024:.0f} GiB"
             + (t(", {pct:.0f}% busy", pct=g.utilisation_pct) if g.utilisation_pct is not None else ""),
             min(1.0, max(0.0, g.memory_used_mb / g.memory_total_mb)) if g.memory_total_mb > 0 else None)
            for g in gpus()]
    if rows:
        return rows
    # core.sysinfo.cpu_summary() says the same in English; the words are put together here to translate them
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    cpu = t("CPU, {threads} threads", threads=os.cpu_count() or 1) + (t(" (load {load:.1f})", load=load)
                                                                      if load is not None else "")
    return [(f"**{cpu}**  \n" + t("no GPU found: training runs on the CPU"), None)]


def render_sidebar() -> None:
    with st.sidebar:
        language_control()  # on every page, so the choice carries across pages
        st.caption(t("Compute"))
        for line, memory_used in device_rows(language()):
            st.markdown(f":material/memory: {line}")
            if memory_used is not None:
                st.progress(memory_used)  # the GPU's memory in use, of its total
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
