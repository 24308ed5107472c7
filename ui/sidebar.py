"""The shared sidebar: the compute device and the job queue (running and queued runs)."""

from __future__ import annotations

import streamlit as st

from core.store.records import ACTIVE_STATUSES
from ui.i18n import language, language_control, tr
from ui.resources import TRAIN_PAGE, status_badge, store


@st.cache_data(ttl=5, show_spinner=False)
def _device_lines(lang: str) -> list[str]:
    """`lang` keys the cache: the lines are drawn in the language `tr` reads."""
    from core.sysinfo import cpu_summary, gpus
    lines = [f"**GPU {g.index}** {g.name}  \n{g.memory_used_mb / 1024:.1f} / {g.memory_total_mb / 1024:.0f} GiB"
             + (tr(", {pct:.0f}% busy", ", {pct:.0f}% 忙碌", pct=g.utilisation_pct) if g.utilisation_pct is not None
                else "") for g in gpus()]
    return lines or [f"**{cpu_summary()}**  \n" + tr("no GPU found: training runs on the CPU",
                                                      "未找到 GPU：训练在 CPU 上运行")]


def render_sidebar() -> None:
    with st.sidebar:
        language_control()  # on every page, so the choice carries across pages
        st.caption(tr("Compute", "计算设备"))
        for line in _device_lines(language()):
            st.markdown(f":material/memory: {line}")
        _queue()


def _queue() -> None:
    # Drawn on every rerun, not on a timer: a timed fragment in the sidebar can race a page switch
    # and break the browser's page (Streamlit: "Bad delta path index"). The Train page polls its run.
    st.caption(tr("Job queue", "任务队列"))
    active = list(store().get_runs(statuses=ACTIVE_STATUSES).values())  # no pandas: first paint
    if not active:
        st.markdown(tr("Nothing running.", "没有正在运行的任务。"))
        return
    for run in active:
        st.page_link(TRAIN_PAGE, label=f"{run.name} · {run.status}", query_params={"run": run.id},
                     icon=":material/play_circle:" if run.status == "running" else ":material/schedule:")
    running = sum(run.status == "running" for run in active)
    st.markdown(status_badge("running") + f" {running} · " + status_badge("queued") + f" {len(active) - running}")
