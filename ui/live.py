"""The Train page's two views: the configuration form with its previews, and the live view of a run.

Every family draws its parts through ui.families.hook: its own whole form (`form`), or the generic form
below with its extras; its samples under the live charts (`live`); its results once the run completed.
"""

from __future__ import annotations

import re

import streamlit as st

from core.errors import LabError
from core.store import ACTIVE_STATUSES, RESUMABLE_STATUSES
from core.store.records import best_of, metric_title, watched_metric
from ui.charts import live_figure
from ui.families import hook
from ui.forms import (PREFIX, PREVIEW_ERROR, compute_section, forget_preset_name, form_config, launch_key, load_clone,
                      native_size_note,
                      memory_estimate, memory_text, needs_path_only, step_time_text, TRAIN_SIZE, note_preview_error,
                      optim_section, options_section, preset_picker, task_picker, validation_error)
from ui.i18n import t, t_core
from ui.resources import duration, show_error, status_badge, store


@st.cache_resource
def _has_cuda() -> bool:
    from core.sysinfo import gpus
    return bool(gpus())


# ---- configure ---------------------------------------------------------------------------------

def configure_view() -> None:
    task = task_picker()
    preset_picker(task)
    st.session_state[PREVIEW_ERROR] = None  # set again below if this drawing's data preview fails
    st.session_state[TRAIN_SIZE] = None  # and this one once a preview counted the training examples
    own_form = hook(task, "form")
    config = own_form(_has_cuda()) if own_form else _family_form(task)
    error = validation_error(config)
    _launch(config, error, st.session_state[PREVIEW_ERROR])
    from ui.sweeps_view import sweep_launcher
    sweep_launcher(config, error or st.session_state[PREVIEW_ERROR])


def _choose(label: str, names: list[str], key: str, **kwargs) -> str:
    """A selectbox whose remembered value may belong to another task: fall back to the first choice."""
    if st.session_state.get(key) not in names and names:
        st.session_state[key] = names[0]
    return st.selectbox(label, names, key=key, **kwargs)


def _family_form(task: str):
    """The form of a family without its own: fields come from the family's option schemas; returns the
    config it describes (not yet validated)."""
    from core.data import dataset_info, list_datasets
    from core.models import list_models, model_info
    from core.tasks import task_spec

    spec = task_spec(task)
    form, side = st.columns([3, 2], gap="large")
    with form:
        with st.container(border=True):
            st.subheader(t("Data"), anchor=False)
            datasets = {n: f"{n} — {t(dataset_info(n).description)}" for n in list_datasets(kind=spec.data_kind)}
            name = _choose(t("Data set"), list(datasets), PREFIX + "data.name", format_func=datasets.get,
                           on_change=forget_preset_name)
            info = dataset_info(name)
            extras = hook(task, "form_extras")
            if extras:
                extras()
            if info.needs_path:
                st.text_input(t("…or a file, folder or .zip on the server"), key=PREFIX + "data.path")
            if spec.data_kind == "images":
                c1, c2, c3 = st.columns(3)
                c1.number_input(t("Image size (px, 0 = native)"), step=4, key=PREFIX + "data.image_size")
                c2.number_input(t("Validation fraction"), step=0.05, format="%.2f", key=PREFIX + "data.val_fraction")
                c3.number_input(t("Limit training samples (0 = all)"), step=100, key=PREFIX + "data.limit")
                size_note = st.empty()  # filled once the config is known: the size a folder's images chose
            options_section("data.options", info.options)
        with st.container(border=True):
            st.subheader(t("Model"), anchor=False)
            model = _choose(t("Model"), list_models(task=task), PREFIX + "model.name")
            st.caption(t(model_info(model).description))
            options_section("model.options", model_info(model).options)
        if spec.options:
            with st.container(border=True):
                st.subheader(t(spec.title), anchor=False)
                st.caption(t(spec.description))
                options_section("task_options", spec.options)
        with st.container(border=True):
            st.subheader(t("Optimisation"), anchor=False)
            optim_section()
        with st.container(border=True):
            st.subheader(t("Compute"), anchor=False)
            compute_section(_has_cuda())
    config = form_config()
    if spec.data_kind == "images":
        native_size_note(size_note, config)
    preview = hook(task, "preview")
    if preview and not (info.needs_path and not config.data.path):
        with side:
            try:
                preview(config)
            except LabError as exc:
                note_preview_error(str(exc))
                st.warning(t_core(str(exc)), icon=":material/warning:")
    return config


def _launch(config, error: str | None, preview_error: str | None) -> None:
    if error and needs_path_only(config, error):  # nothing typed yet: guidance, not an error
        st.info(t("Upload a .zip or name a folder on the server to train on your own data."),
                icon=":material/folder_open:")
    elif error:
        st.error(t_core(error), icon=":material/error:")
    elif preview_error:
        st.caption(":material/block: " + t("Launch waits until the data loads: see the message next to the preview."))
    estimate = None if error else memory_estimate(config)
    if estimate and estimate["tight"]:
        st.warning(t("Memory: {memory}. It may not fit: a smaller batch or image size is safer.",
                     memory=memory_text(estimate)), icon=":material/memory:")
    elif estimate:
        st.caption(":material/memory: " + t("Memory: {memory}", memory=memory_text(estimate)))
    if estimate and estimate["seconds_per_step"]:
        st.caption(":material/timer: " + t("Time: {time} (estimated from the model's FLOPs and this machine's measured "
                                           "speed)", time=step_time_text(estimate["seconds_per_step"], _steps_hint(config))))
    if st.button(t("Launch"), type="primary", icon=":material/play_arrow:", disabled=bool(error or preview_error)):
        from core import jobs
        try:
            run_id = jobs.submit(config, request_key=launch_key())
        except Exception as exc:
            show_error(exc)
        else:
            st.session_state["_watched"] = run_id
            st.session_state["_next_mode"] = "Watch"  # applied before the view switch is drawn
            st.query_params["run"] = run_id
            st.rerun()


# ---- watch -------------------------------------------------------------------------------------

def _steps_hint(config) -> int | None:
    """Steps per epoch when the form's data preview counted the training examples (else None)."""
    size = st.session_state.get(TRAIN_SIZE)
    if not size:
        return None
    from core.data.loader import steps_per_epoch
    return steps_per_epoch(int(size), config.optim.batch_size)


def watch_view(run_id: str) -> None:
    try:
        run = store().get_run(run_id)
    except LabError as exc:
        st.error(t("{error}. Pick a run on the Runs page.", error=t_core(str(exc))), icon=":material/search_off:")
        return
    st.subheader(run.name, anchor=False)
    st.markdown(f"{status_badge(run.status)} `{run.id}` · {run.config['data']['name']} · "
                f"{run.config['model']['name']} · {_device_text(run.device)}")
    _actions(run)
    st.fragment(run_every=1.5 if run.status in ACTIVE_STATUSES else None)(_live_panel)(run_id, run.status)
    results = hook(run.task, "results") if run.status == "completed" else None
    if results:
        results(run)


def _device_text(device: str | None) -> str:
    """The run's device as core.engine.devices.describe wrote it ("cpu (8 threads)", "cuda:0 (name, 80 GiB)")."""
    if not device:
        return t("device not chosen yet")
    threads = re.fullmatch(r"cpu \((\d+) threads\)", device)
    return t("cpu ({threads} threads)", threads=threads.group(1)) if threads else device


def _actions(run) -> None:
    from core import jobs
    bar = st.container(horizontal=True)
    try:
        if run.status in ACTIVE_STATUSES:
            with bar.popover(t("Steer"), icon=":material/tune:", help=t("Change the running job: more epochs, "
                             "a new learning rate, or stop after this epoch")):
                _steer(run)
        if run.status in ACTIVE_STATUSES and bar.button(t("Cancel"), icon=":material/stop:"):
            with st.spinner(t("Stopping after the current step…")):
                jobs.cancel(run.id, wait_s=15)
            st.rerun()
        if run.status in RESUMABLE_STATUSES and bar.button(t("Resume"), icon=":material/play_arrow:", type="primary"):
            jobs.resume(run.id)
            st.rerun()
    except LabError as exc:  # the run changed state since this page was drawn
        show_error(exc)
    if bar.button(t("Clone into form"), icon=":material/content_copy:"):
        from core.config import RunConfig
        load_clone(RunConfig.from_dict(run.config))
        st.session_state["_next_mode"] = "Configure"
        st.rerun()


def _steer(run) -> None:
    """Live control (core.jobs.control): the worker applies each change between two steps."""
    from core.jobs import control
    optim = run.config["optim"]
    # the keys name the current values: a change made elsewhere (the CLI, another tab) redraws the fields with it,
    # so Apply never sends a stale number back
    epochs = st.number_input(t("Epochs in all"), min_value=1, value=int(optim["epochs"]), step=1,
                             key=f"steer.epochs.{run.id}.{optim['epochs']}", help=t("A cosine or one-cycle schedule stretches to the new length."))
    lr = st.number_input(t("Learning rate"), min_value=0.0, value=float(optim["lr"]), format="%.2e",
                         key=f"steer.lr.{run.id}.{optim['lr']:g}", help=t("The schedule keeps its shape around the new rate."))
    try:
        if st.button(t("Apply"), type="primary", key=f"steer.apply.{run.id}", width="stretch"):
            control.request(run.id, epochs=int(epochs), lr=float(lr))  # unchanged values are no change
            st.toast(t("Sent: the run applies it within a few seconds."), icon=":material/tune:")
        st.divider()
        if st.button(t("Stop after this epoch"), key=f"steer.stop.{run.id}", width="stretch"):
            control.request(run.id, stop_after_epoch=True)
            st.toast(t("Sent: the run stops when the epoch under way ends."), icon=":material/stop_circle:")
    except LabError as exc:
        show_error(exc)


def change_text(change, run_active: bool) -> str:
    """One applied or pending control request, in the interface's language."""
    value, old = change.value, change.old_value
    if change.kind == "epochs":
        what = t("epochs {old} → {new}", old=f"{old:g}", new=f"{value:g}") if change.applied \
            else t("epochs → {new}", new=f"{value:g}")
    elif change.kind == "lr":
        what = t("learning rate {old} → {new}", old=f"{old:g}", new=f"{value:g}") if change.applied \
            else t("learning rate → {new}", new=f"{value:g}")
    else:
        what = t("stop after epoch {epoch}", epoch=f"{value:g}") if change.applied else t("stop after this epoch")
    if change.applied:
        return what + " · " + t("at step {step}", step=f"{change.step:,}")
    waiting = run_active and not change.note  # a closed request carries a note (core.store.controls.ENDED_FIRST)
    return what + " · " + (t("waiting for the worker") if waiting else t("not applied: the run ended first"))


def mark_changes(fig, changes) -> None:
    """A dotted line on every panel at each step where a change took effect, labelled on the first panel."""
    for change in changes:
        if not change.applied or change.kind == "stop_after_epoch":
            continue
        fig.add_vline(x=change.step, line=dict(color="#64748b", width=1, dash="dot"), row="all", col="all")
        label = t("epochs → {new}", new=f"{change.value:g}") if change.kind == "epochs" \
            else t("learning rate → {new}", new=f"{change.value:g}")
        fig.add_annotation(x=change.step, y=1, xref="x", yref="y domain", text=label, showarrow=False,
                           xanchor="left", yanchor="top", font=dict(size=10, color="#475569"),
                           bgcolor="rgba(255,255,255,0.8)")


def _live_panel(run_id: str, status_at_render: str) -> None:
    run = store().get_run(run_id)
    if run.status != status_at_render:  # queued -> running -> done: redraw the whole page once
        st.rerun(scope="app")
    from core.analysis import run_progress
    from core.jobs.runner import resumed_at
    frame = store().metrics(run_id)
    if run.status == "queued":
        st.info(t("Starting the worker, or waiting for a free device slot (one run at a time per device)…"),
                icon=":material/schedule:")
    elif run.status == "failed":
        st.error(t_core(run.error) if run.error else t("the run failed"), icon=":material/error:")
    since = resumed_at(store(), run_id) if run.status == "running" else None
    progress = run_progress(run.status, run.config, run.summary, frame, since=since)
    if progress.total:
        st.progress(progress.fraction, text=t(
            "epoch {epoch}/{epochs} · step {done}/{total} · elapsed {elapsed}", epoch=progress.epoch,
            epochs=progress.epochs, done=f"{progress.done:,}", total=f"{progress.total:,}",
            elapsed=duration(run.duration_s or 0.0))
            + (t(" · about {left} left", left=duration(progress.eta_s)) if progress.eta_s is not None else "")
            + (t(" (estimated before launch; measured from the first logged steps)") if progress.eta_estimated else ""))
    last = store().last_metrics(run_id)
    headline = watched_metric(run.summary)
    show = (lambda v: f"{v:.2%}") if headline.endswith("acc") else (lambda v: f"{v:.4g}")
    gpu = "gpu_mem_alloc_mb" in last  # a CUDA run (core.engine.device_stats); a CPU run has no such key
    c1, c2, c3, c4, *rest = st.columns(5 if gpu else 4)
    c1.metric(t("train loss"), f"{last['train_loss']:.4f}" if "train_loss" in last else "–")
    c2.metric(t(metric_title(headline)), show(last[headline]) if headline in last else "–")
    best = best_of(run.summary)
    c3.metric(t("best"), show(best) if best is not None else "–",
              help=t("epoch {epoch}", epoch=run.summary.get("best_epoch")) if best is not None else None)
    c4.metric(t("samples / s"), f"{last['samples_per_s']:,.0f}" if "samples_per_s" in last else "–",
              help=t("characters per second for language models, environment steps for RL"))
    if gpu:
        gpu_tile(rest[0], last)
    changes = store().controls(run_id)
    if not frame.empty:
        figure = live_figure(frame)
        mark_changes(figure, changes)
        st.plotly_chart(figure, key=f"live-{run_id}")
    if changes:
        st.caption(t("Changed while it trained") + ":  \n" + "  \n".join(
            f":material/tune: {change_text(c, run.status in ACTIVE_STATUSES)}" for c in changes))
    family_live = hook(run.task, "live")
    if family_live:
        from core.paths import run_dir
        family_live(run, run_dir(run_id))
    if "gpu_mem_mb" in last and not gpu:  # a run from before the per-row statistics: its peak per epoch
        st.caption(t("GPU memory (peak): {mb} MB", mb=f"{last['gpu_mem_mb']:,.0f}"))
    if run.status == "failed":
        from core.paths import run_dir
        log = run_dir(run_id) / "log.txt"
        if log.exists():
            with st.expander(t("Worker log")):
                st.code(log.read_text(errors="replace")[-4000:])


def gpu_tile(column, last: dict[str, float]) -> None:
    """The run's GPU memory now; the device's total, reserved, peak and utilisation in its tooltip (the chart
    below draws them over time)."""
    def gib(key: str) -> str:
        return f"{last[key] / 1024:.1f}" if key in last and last[key] == last[key] else "–"  # NaN: not read
    detail = t("allocated now, of {total} GiB; reserved {reserved} GiB, peak {peak} GiB", total=gib("gpu_mem_total_mb"),
               reserved=gib("gpu_mem_reserved_mb"), peak=gib("gpu_mem_peak_mb"))
    busy = last.get("gpu_util_pct")
    if busy is not None and busy == busy:  # NaN when NVML could not say
        detail += t(", {pct:.0f}% busy", pct=busy)
    column.metric(t("GPU memory"), f"{gib('gpu_mem_alloc_mb')} GiB", help=detail)
