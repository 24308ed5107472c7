"""The Train page's two views: the configuration form with its previews, and the live view of a run."""

from __future__ import annotations

import streamlit as st

from core.errors import LabError
from core.store.records import best_of, watched_metric
from ui.charts import class_counts_figure, confusion_figure, live_figure, schedule_figure
from ui.families import hook
from ui.forms import (PREFIX, compute_section, data_section, form_config, load_into_form, model_section,
                      optim_section, options_section, preset_picker, task_picker)
from ui.resources import duration, show_error, status_badge, store
from ui.sparkline import metric_label

ACTIVE = ("queued", "running")


# ---- cached look-ups ---------------------------------------------------------------------------

@st.cache_data(show_spinner="Loading the data set…", max_entries=16)
def _preview(data_json: str, seed: int):
    from core.config import DataConfig
    from core.data.preview import mosaic, preview
    import json
    result = preview(DataConfig(**json.loads(data_json)), seed=seed)
    return result, mosaic(result.samples)


@st.cache_data(show_spinner=False, max_entries=32)
def _model_card(name: str, channels: int, size: int, classes: int, hidden: int, dropout: float):
    from core.models import build, model_info, parameter_count
    from core.models.summary import layer_summary
    model = build(name, num_classes=classes, in_channels=channels, image_size=size, hidden=hidden, dropout=dropout)
    return parameter_count(model), layer_summary(model, (channels, size, size)), model_info(name).description


@st.cache_resource
def _has_cuda() -> bool:
    from core.sysinfo import gpus
    return bool(gpus())


# ---- configure ---------------------------------------------------------------------------------

def configure_view() -> None:
    from core.data import dataset_info, list_datasets
    from core.models import list_models, model_info

    task = task_picker()
    preset_picker(task)
    if task != "classification":
        _family_form(task)
        return
    form, side = st.columns([3, 2], gap="large")
    with form:
        with st.container(border=True):
            st.subheader("Data", anchor=False)
            data_section(list_datasets())
        with st.container(border=True):
            st.subheader("Model", anchor=False)
            name = st.session_state.get("cfg.model.name")
            model_section(list_models(), pretrained_ok=name in list_models() and model_info(name).pretrained_available)
        with st.container(border=True):
            st.subheader("Optimisation", anchor=False)
            optim_section()
        with st.container(border=True):
            st.subheader("Compute", anchor=False)
            compute_section(_has_cuda())

    config = form_config()
    error = None
    try:
        config.validate()
    except LabError as exc:
        error = str(exc)

    with side:
        info = dataset_info(config.data.name) if config.data.name in list_datasets() else None
        data_preview = None
        if info and (config.data.path or not info.needs_path):
            try:
                data_preview, grid = _preview(_data_json(config), config.seed)
            except LabError as exc:
                st.warning(str(exc), icon=":material/cloud_off:")
        if data_preview:
            with st.container(border=True):
                st.subheader("Data preview", anchor=False)
                st.caption(f"{data_preview.source} · {data_preview.train_size:,} training and "
                           f"{sum(data_preview.val_counts):,} validation images · {data_preview.image_size}px · "
                           f"{'grey' if data_preview.channels == 1 else 'RGB'}"
                           + (f" · {data_preview.skipped} unreadable files skipped" if data_preview.skipped else ""))
                st.image(grid, caption="one column per class: " + ", ".join(data_preview.classes[:20]),
                         width="stretch")
                st.plotly_chart(class_counts_figure(data_preview.classes, data_preview.train_counts,
                                                    data_preview.val_counts), key="counts")
        if data_preview and not error:
            with st.container(border=True):
                st.subheader("Model", anchor=False)
                params, layers, description = _model_card(config.model.name, data_preview.channels,
                                                          config.data.image_size or data_preview.image_size,
                                                          len(data_preview.classes), config.model.hidden,
                                                          config.model.dropout)
                st.caption(description)
                st.metric("parameters", f"{params:,}")
                if model_info(config.model.name).pretrained_available:
                    st.caption(":material/download: ImageNet weights available (downloaded on first use)")
                with st.expander("Layers"):
                    st.dataframe(layers, hide_index=True, width="stretch")
            with st.container(border=True):
                st.subheader("Learning-rate schedule", anchor=False)
                from core.engine.optim import lr_curve
                batch = config.optim.batch_size
                steps = max(1, data_preview.train_size // batch if data_preview.train_size > batch else 1)
                st.plotly_chart(schedule_figure(lr_curve(config.optim, steps), steps), key="schedule")

    _launch(config, error)


def _validated(config) -> str | None:
    try:
        config.validate()
    except LabError as exc:
        return str(exc)
    return None


def _choose(label: str, names: list[str], key: str, **kwargs) -> str:
    """A selectbox whose remembered value may belong to another task: fall back to the first choice."""
    if st.session_state.get(key) not in names and names:
        st.session_state[key] = names[0]
    return st.selectbox(label, names, key=key, **kwargs)


def _family_form(task: str) -> None:
    """The form of every task but image classification: fields come from the family's option schemas."""
    from core.data import dataset_info, list_datasets
    from core.models import list_models, model_info
    from core.tasks import task_spec

    spec = task_spec(task)
    form, side = st.columns([3, 2], gap="large")
    with form:
        with st.container(border=True):
            st.subheader("Data", anchor=False)
            name = _choose("Data set", list_datasets(kind=spec.data_kind), PREFIX + "data.name",
                           format_func=lambda n: f"{n} — {dataset_info(n).description}")
            info = dataset_info(name)
            extras = hook(task, "form_extras")
            if extras:
                extras()
            if info.needs_path:
                st.text_input("…or a file, folder or .zip on the server", key=PREFIX + "data.path")
            if spec.data_kind == "images":
                c1, c2, c3 = st.columns(3)
                c1.number_input("Image size (px, 0 = native)", step=4, key=PREFIX + "data.image_size")
                c2.number_input("Validation fraction", step=0.05, format="%.2f", key=PREFIX + "data.val_fraction")
                c3.number_input("Limit training samples (0 = all)", step=100, key=PREFIX + "data.limit")
            options_section("data.options", info.options)
        with st.container(border=True):
            st.subheader("Model", anchor=False)
            model = _choose("Model", list_models(task=task), PREFIX + "model.name")
            st.caption(model_info(model).description)
            options_section("model.options", model_info(model).options)
        if spec.options:
            with st.container(border=True):
                st.subheader(spec.title, anchor=False)
                st.caption(spec.description)
                options_section("task_options", spec.options)
        with st.container(border=True):
            st.subheader("Optimisation", anchor=False)
            optim_section(classification=False)
        with st.container(border=True):
            st.subheader("Compute", anchor=False)
            compute_section(_has_cuda())
    config = form_config()
    error = _validated(config)
    preview = hook(task, "preview")
    if preview and not (info.needs_path and not config.data.path):
        with side:
            try:
                preview(config)
            except LabError as exc:
                st.warning(str(exc), icon=":material/warning:")
    _launch(config, error)


def _launch(config, error: str | None) -> None:
    if error:
        st.error(error, icon=":material/error:")
    if st.button("Launch", type="primary", icon=":material/play_arrow:", disabled=bool(error)):
        from core import jobs
        try:
            run_id = jobs.submit(config)
        except Exception as exc:
            show_error(exc)
        else:
            st.session_state["_watched"] = run_id
            st.session_state["_next_mode"] = "Watch"  # applied before the view switch is drawn
            st.query_params["run"] = run_id
            st.rerun()


def _data_json(config) -> str:
    import dataclasses
    import json
    return json.dumps(dataclasses.asdict(config.data), sort_keys=True)


# ---- watch -------------------------------------------------------------------------------------

def watch_view(run_id: str) -> None:
    try:
        run = store().get_run(run_id)
    except LabError as exc:
        st.error(f"{exc}. Pick a run on the Runs page.", icon=":material/search_off:")
        return
    st.subheader(run.name, anchor=False)
    st.markdown(f"{status_badge(run.status)} `{run.id}` · {run.config['data']['name']} · "
                f"{run.config['model']['name']} · {run.device or 'device not chosen yet'}")
    _actions(run)
    st.fragment(run_every=1.5 if run.status in ACTIVE else None)(_live_panel)(run_id, run.status)
    if run.status == "completed":
        task = run.config.get("task", "classification")
        results = hook(task, "results")
        if task == "classification":
            _results(run)
        elif results:
            results(run)


def _actions(run) -> None:
    from core import jobs
    bar = st.container(horizontal=True)
    try:
        if run.status in ACTIVE and bar.button("Cancel", icon=":material/stop:"):
            with st.spinner("Stopping after the current step…"):
                jobs.cancel(run.id, wait_s=15)
            st.rerun()
        if run.status in ("interrupted", "cancelled") and bar.button("Resume", icon=":material/play_arrow:",
                                                                    type="primary"):
            jobs.resume(run.id)
            st.rerun()
    except LabError as exc:  # the run changed state since this page was drawn
        show_error(exc)
    if bar.button("Clone into form", icon=":material/content_copy:"):
        from core.config import RunConfig
        load_into_form(RunConfig.from_dict(run.config).replace(name=""))
        st.session_state["_next_mode"] = "Configure"
        st.rerun()


def _live_panel(run_id: str, status_at_render: str) -> None:
    run = store().get_run(run_id)
    if run.status != status_at_render:  # queued -> running -> done: redraw the whole page once
        st.rerun(scope="app")
    frame = store().metrics(run_id)
    epochs = run.config["optim"]["epochs"]
    per_epoch = run.summary.get("steps_per_epoch") or 0
    total = epochs * per_epoch
    done = int(frame.step.max()) if not frame.empty else 0
    if run.status == "completed":
        done = total or done
    if run.status == "queued":
        st.info("Starting the worker, or waiting for a free device slot (one run at a time per device)…",
                icon=":material/schedule:")
    elif run.status == "failed":
        st.error(run.error or "the run failed", icon=":material/error:")
    if total:
        elapsed = (run.duration_s or 0.0)
        from core.analysis import remaining_seconds
        from core.jobs.runner import resumed_at
        eta = remaining_seconds(frame, total, since=resumed_at(store(), run_id)) if run.status == "running" else None
        st.progress(min(1.0, done / total), text=f"epoch {min(epochs, done // max(1, per_epoch) + 1)}/{epochs} · "
                    f"step {done:,}/{total:,} · elapsed {duration(elapsed)}"
                    + (f" · about {duration(eta)} left" if eta is not None else ""))
    last = store().last_metrics(run_id)
    headline = watched_metric(run.summary)
    show = (lambda v: f"{v:.2%}") if headline.endswith("acc") else (lambda v: f"{v:.4g}")
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("train loss", f"{last['train_loss']:.4f}" if "train_loss" in last else "–")
    c2.metric(metric_label(headline),
              show(last[headline]) if headline in last else "–")
    best = best_of(run.summary)
    c3.metric("best", show(best) if best is not None else "–",
              help=f"epoch {run.summary.get('best_epoch')}" if best is not None else None)
    c4.metric("samples / s", f"{last['samples_per_s']:,.0f}" if "samples_per_s" in last else "–",
              help="characters per second for language models, environment steps for RL")
    if not frame.empty:
        st.plotly_chart(live_figure(frame), key=f"live-{run_id}")
    family_live = hook(run.config.get("task", "classification"), "live")
    if family_live:
        from core.paths import run_dir
        family_live(run, run_dir(run_id))
    if "gpu_mem_mb" in last:
        st.caption(f"GPU memory (peak): {last['gpu_mem_mb']:,.0f} MB")
    if run.status == "failed":
        from core.paths import run_dir
        log = run_dir(run_id) / "log.txt"
        if log.exists():
            with st.expander("Worker log"):
                st.code(log.read_text(errors="replace")[-4000:])


def _results(run) -> None:
    from core.inference import evaluate_run, val_images
    st.subheader("Validation results", anchor=False)
    try:
        with st.spinner("Evaluating the best checkpoint on the validation set…"):
            report = evaluate_run(run.id, "best")
    except Exception as exc:
        show_error(exc)
        return
    left, right = st.columns([3, 2], gap="large")
    with left:
        st.caption("Click a cell to see the images behind it.")
        event = st.plotly_chart(confusion_figure(report.classes, report.confusion), key=f"cm-{run.id}",
                                on_select="rerun", selection_mode="points")
    with right:
        st.metric("accuracy (best checkpoint)", f"{report.accuracy:.2%}")
        st.dataframe(report.per_class, hide_index=True, width="stretch",
                     column_config={c: st.column_config.ProgressColumn(c, min_value=0, max_value=1, format="%.2f")
                                    for c in ("precision", "recall", "f1")})
    points = (event.selection.points if event and event.selection else []) or []
    if points:
        true_name, pred_name = points[0]["y"], points[0]["x"]
        wrong = report.misclassified
        picked = wrong[(wrong["true"] == true_name) & (wrong["predicted"] == pred_name)]
        if true_name == pred_name:
            st.info(f"{true_name}: the diagonal holds the correctly classified images.")
        elif picked.empty:
            st.info(f"No {true_name} image was classified as {pred_name}.")
        else:
            st.markdown(f"**{len(picked)} {true_name} image(s) classified as {pred_name}**")
            images = val_images(run.id, picked["index"].tolist()[:24])
            st.image(images, width=96, caption=[f"{c:.0%}" for c in picked["confidence"].tolist()[:24]])

