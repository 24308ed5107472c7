"""Sweeps on the Runs page (a sweep's trials, their parallel coordinates, the best configuration, "train the
best for longer") and the sweep launcher under the Train form."""

from __future__ import annotations

import math

import streamlit as st

from core.errors import LabError
from core.store.records import ACTIVE_STATUSES, metric_title
from ui.i18n import N_, t, t_core
from ui.resources import TRAIN_PAGE, RUNS_PAGE, duration, show_error, status_badge, store

METHOD_WORDS = {"grid": N_("Grid: every combination"), "random": N_("Random search"),
                "optuna": N_("Optuna (TPE, prunes bad trials)")}
SWEEP_STATUS_WORDS = (N_("submitted"), N_("running"), N_("completed"), N_("cancelled"), N_("failed"))
# fields a sweep usually varies, offered first in the launcher (any config key can be typed in the CLI)
SWEEPABLE = ["optim.lr", "optim.batch_size", "optim.weight_decay", "optim.optimizer", "optim.schedule",
             "optim.epochs", "optim.warmup_epochs", "optim.momentum", "optim.label_smoothing", "optim.grad_clip",
             "data.image_size", "seed"]


# ---- the launcher (Train page) -----------------------------------------------------------------

def sweep_launcher(config, error: str | None) -> None:
    """Under the form: vary a few fields of the config it describes and launch the sweep."""
    from core.jobs import sweeps
    with st.expander(t("Sweep: try several settings at once"), icon=":material/grid_view:"):
        st.caption(t("Each row varies one field: list values (1e-3, 1e-2) or, for random search and Optuna, "
                     "give a range (1e-4 : 1e-1 : log). Runs go through the normal queue, one per device at a time."))
        methods = {method: t(words) for method, words in METHOD_WORDS.items()}
        method = st.segmented_control(t("Method"), list(methods), format_func=methods.get, key="sweep_method",
                                      default="grid", required=True)
        lr = config.optim.lr
        st.session_state.setdefault("sweep_rows", [
            {"field": "optim.lr", "values": f"{lr / 3:.2g}, {lr:.2g}, {lr * 3:.2g}"}])
        import pandas as pd
        rows = st.data_editor(
            pd.DataFrame(st.session_state["sweep_rows"], columns=["field", "values"]), num_rows="dynamic",
            key="sweep_editor", width="stretch", hide_index=True,
            column_config={"field": st.column_config.SelectboxColumn(t("Field"), options=SWEEPABLE, required=True),
                           "values": st.column_config.TextColumn(t("Values"), required=True)})
        trials = None
        if method != "grid":
            trials = st.number_input(t("Trials"), min_value=1, max_value=sweeps.MAX_RUNS, value=8, key="sweep_trials")
        dimensions, problem = _dimensions(rows)
        count = None
        if not problem and dimensions and method == "grid":
            try:
                count = len(sweeps.grid_points(dimensions))
            except LabError as exc:
                problem = t_core(str(exc))
        elif not problem and dimensions:
            count = int(trials)
        if problem:
            st.warning(problem, icon=":material/warning:")
        elif count:
            st.caption(t("{count} run(s) of this configuration, each as long as one run above.", count=count))
        disabled = bool(error or problem or not dimensions)
        if st.button(t("Launch sweep"), icon=":material/rocket_launch:", disabled=disabled, key="sweep_launch"):
            try:
                sweep_id = sweeps.start(config, dimensions, method=method, trials=trials)
            except Exception as exc:
                show_error(exc)
            else:
                st.session_state["sweep_rows"] = rows.to_dict("records")
                st.switch_page(RUNS_PAGE, query_params={"sweep": sweep_id})


def _dimensions(rows) -> tuple[list, str | None]:
    from core.jobs import sweeps
    dimensions = []
    for field, values in zip(rows["field"], rows["values"]):
        if not isinstance(field, str) or not isinstance(values, str) or not values.strip():
            continue
        try:
            dimensions.append(sweeps.parse_dimension(f"{field}={values}"))
        except LabError as exc:
            return [], t_core(str(exc))
    return dimensions, None


# ---- the Runs page's sweep view ----------------------------------------------------------------

def sweeps_view() -> None:
    all_sweeps = store().list_sweeps()
    if not all_sweeps:
        st.info(t("No sweeps yet. Open Train, set up a run, and use \"Sweep: try several settings at once\" under "
                  "Launch (or `python -m core sweep`)."), icon=":material/grid_view:")
        return
    ids = [s.id for s in all_sweeps]
    wanted = st.query_params.get("sweep")
    if st.session_state.get("sweep_pick") not in ids:
        st.session_state["sweep_pick"] = wanted if wanted in ids else ids[0]
    names = {s.id: f"{s.name} · {s.id}" for s in all_sweeps}
    chosen = st.selectbox(t("Sweep"), ids, format_func=names.get, key="sweep_pick")
    if st.query_params.get("sweep") != chosen:
        st.query_params["sweep"] = chosen
    from core.jobs import sweeps
    sweep = sweeps.refresh(chosen)
    live = sweep.status in ("running", "submitted")
    st.fragment(run_every=2.0 if live else None)(_sweep_panel)(chosen)


def _sweep_panel(sweep_id: str) -> None:
    from core.jobs import sweeps
    sweep = sweeps.refresh(sweep_id)
    table = sweeps.results(sweep_id)
    metric = sweep.metric
    active = int(table.status.isin(ACTIVE_STATUSES).sum())
    finished = len(table) - active
    space = "; ".join(f"`{key}` {_describe(sweeps.Dimension.from_dict(key, raw))}" for key, raw in sweep.space.items())
    badge = status_badge(sweep.status) if sweep.status in ("running", "completed", "cancelled", "failed") else ""
    st.markdown(f"{badge} "
                f"**{t(METHOD_WORDS[sweep.method])}** · {space} · " + t("watching {metric}", metric=t(metric_title(metric))))
    st.progress(min(1.0, finished / max(1, sweep.trials)),
                text=t("{done} of {total} trials finished · {active} queued or running",
                       done=finished, total=sweep.trials, active=active))
    if sweep.error:
        st.error(t_core(sweep.error), icon=":material/error:")
    if sweep.status in ("running", "submitted") and st.button(t("Cancel sweep"), icon=":material/stop:",
                                                              key="sweep_cancel"):
        sweeps.cancel(sweep_id)
        st.rerun(scope="app")
    if table.empty:
        st.info(t("The first trial is being prepared…"), icon=":material/schedule:")
        return
    best = sweeps.best_run(sweep_id)
    if best:
        _best(sweep, table, best)
    if table[metric].notna().sum() >= 2:
        st.caption(t("Each line is one trial, coloured by its {metric}; drag along an axis to pick out a band of "
                     "values.", metric=t(metric_title(metric))))
        st.plotly_chart(_parallel(sweep, table), key=f"sweep_parallel-{sweep_id}")
    shown = table.drop(columns=["duration_s"]).assign(duration=table.duration_s.map(duration),
                                                      status=table.status.map(t))
    st.dataframe(shown, hide_index=True, width="stretch", key=f"sweep_table-{sweep_id}", column_config={
        "trial": st.column_config.NumberColumn(t("trial"), format="%d"),
        "run_id": st.column_config.TextColumn(t("run"), width=150),
        "status": st.column_config.TextColumn(t("status")),
        metric: st.column_config.NumberColumn(t(metric_title(metric)), format="%.4g"),
        "pruned": st.column_config.CheckboxColumn(t("pruned"), help=t("Stopped early by Optuna's median pruner")),
        "epochs_done": st.column_config.NumberColumn(t("epochs done"), format="%d"),
        "duration": st.column_config.TextColumn(t("duration")),
        **{key: st.column_config.NumberColumn(key, format="%.3g") for key in sweep.space
           if table[key].dtype.kind == "f"}})
    st.page_link(RUNS_PAGE, label=t("Compare these runs' curves"), icon=":material/stacked_line_chart:",
                 query_params={"view": "runs", "compare": ",".join(table.run_id)})


def _best(sweep, table, best: str) -> None:
    from core.jobs import sweeps
    row = table.set_index("run_id").loc[best]
    run = store().get_run(best)
    with st.container(border=True):
        st.markdown(":material/emoji_events: **" + t("Best configuration") + f"** · {run.name} · "
                    + t("{metric} {value}", metric=t(metric_title(sweep.metric)), value=f"{row[sweep.metric]:.4g}"))
        st.markdown("  ·  ".join(f"`{key}` = **{_shown(row[key])}**" for key in sweep.space))
        left, right = st.columns([1, 2], vertical_alignment="bottom")
        epochs = left.number_input(t("Epochs"), min_value=1, max_value=10_000,
                                   value=int(run.config["optim"]["epochs"]) * 3, key=f"sweep_longer-{sweep.id}")
        if right.button(t("Train the best for longer"), icon=":material/trending_up:", key=f"sweep_train-{sweep.id}"):
            try:
                run_id = sweeps.train_longer(sweep.id, int(epochs))
            except Exception as exc:
                show_error(exc)
            else:
                st.switch_page(TRAIN_PAGE, query_params={"run": run_id})
        st.page_link(TRAIN_PAGE, label=t("Open the best run"), query_params={"run": best}, icon=":material/open_in_new:")


def _describe(dimension) -> str:
    """A dimension's values as core's Dimension.describe() writes them, "(log)" in the page's language."""
    if dimension.is_range and dimension.log:
        return f"{dimension.low:g} … {dimension.high:g} " + t("(log)")
    return dimension.describe()


def _shown(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _parallel(sweep, table):
    """Parallel coordinates: one axis per varied field (log-spaced ones as log10), the metric last and as colour."""
    from ui.charts import parallel_figure
    frame = table[["run_id", *sweep.space, sweep.metric]].copy()
    for key, raw in sweep.space.items():
        if raw.get("log") or (raw.get("choices") and _spans_decades(raw["choices"])):
            frame[key] = frame[key].astype(float).map(math.log10)
            frame = frame.rename(columns={key: f"log10 {key}"})
    title = t(metric_title(sweep.metric))
    frame = frame.rename(columns={sweep.metric: title})
    figure = parallel_figure(frame, title)
    figure.update_layout(margin=dict(l=70, r=70, t=70, b=30))  # room for the outer axes' labels and ticks
    return figure


def _spans_decades(values) -> bool:
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0]
    return len(numbers) == len(values) and len(numbers) > 1 and max(numbers) / min(numbers) >= 100
