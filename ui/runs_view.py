"""The Runs page's comparison and management sections for the selected runs."""

from __future__ import annotations

import streamlit as st

from core.store.records import metric_title
from ui.charts import overlay_figure, parallel_figure
from ui.i18n import N_, language, t
from ui.resources import store

# Headers of the Runs table's columns that app_pages/runs.py configures no further (English: the column names).
RUN_COLUMNS = {"task": N_("task"), "dataset": N_("dataset"), "model": N_("model"), "batch_size": N_("batch_size"),
               "epochs": N_("epochs"), "optimizer": N_("optimizer"), "device": N_("device"), "tags": N_("tags")}
X_AXES = {"step": N_("step"), "epoch": N_("epoch"), "time": N_("time")}


def choose(options) -> str:
    """A multiselect's placeholder: Streamlit's own words (English whatever the page's language), translated."""
    return t("Choose options") if len(options) else t("No options to select")


def compare_section(selected: list[str], names: dict[str, str], configs: dict[str, dict]) -> None:
    from core.analysis import compare_runs, config_diff, hparam_table
    keys = store().metric_keys(selected)
    if not keys:
        st.info(t("The selected runs have no metrics yet."))
        return
    _restore_view(keys)
    with st.container(border=True):
        c1, c2, c3, c4 = st.columns([3, 2, 2, 1])
        # English names each metric's key too (as typed in the CLI); in other languages it would be the one
        # English word in the label.
        titles = {k: f"{metric_title(k)} ({k})" if language() == "en" else t(metric_title(k)) for k in keys}
        chosen = c1.multiselect(t("Metrics"), keys, key="cmp_metrics", max_selections=6, format_func=titles.get,
                                help=t("Several metrics are drawn as small charts sharing the x-axis"),
                                placeholder=choose(keys))
        axes = {axis: t(word) for axis, word in X_AXES.items()}
        x = c2.segmented_control(t("x-axis"), list(axes), format_func=axes.get, key="cmp_x", required=True)
        smoothing = c3.slider(t("Smoothing (EMA)"), 0.0, 0.99, step=0.01, key="cmp_smooth")
        log_y = c4.toggle(t("log scale"), key="cmp_log")
        _share_view(chosen, x, smoothing, log_y)
        if not chosen:
            st.info(t("Choose one or more metrics to compare."), icon=":material/show_chart:")
            return
        results = {key: compare_runs(store(), selected, key, x=x, smoothing=smoothing) for key in chosen}
        figures = {key: overlay_figure(r.curves, r.best, names, key=key, x=x, log_y=log_y, smoothed=smoothing > 0)
                   for key, r in results.items()}
        _share_x_range(figures.values(), [r.curves for r in results.values()])
        columns = st.columns(1 if len(chosen) == 1 else 2)
        for index, (key, figure) in enumerate(figures.items()):
            figure.update_yaxes(title_text=t(metric_title(key)))  # the axis names the metric; the legend, the runs
            if len(chosen) > 1:
                figure.update_layout(height=320)
            columns[index % len(columns)].plotly_chart(figure, key=f"cmp_chart-{key}")
    key, result = chosen[0], results[chosen[0]]  # the tables below describe the first metric
    best = result.best

    stats_tab, diff_tab, hp_tab, export_tab = st.tabs([t("Statistics"), t("Config diff"), t("Hyperparameters"),
                                                       t("Export")])
    with stats_tab:
        stats = result.stats.copy()
        stats.insert(1, "name", stats.run_id.map(names))
        metric = t(metric_title(key))
        st.caption(t("over each run's full history; best = highest {metric}", metric=metric) if result.mode == "max"
                   else t("over each run's full history; best = lowest {metric}", metric=metric))
        st.dataframe(stats, hide_index=True, width="stretch", column_config={
            "run_id": st.column_config.TextColumn(t("id"), width=150),
            "name": st.column_config.TextColumn(t("name")),
            "step_of_best": st.column_config.NumberColumn(t("step of best"), format="%d"),
            # a metric logged within an epoch has a fractional epoch: one decimal says where without noise
            "epoch_of_best": st.column_config.NumberColumn(t("epoch of best"), format="%.1f"),
            "count": st.column_config.NumberColumn(t("count")),
            **{c: st.column_config.NumberColumn(t(word), format="%.4g")
               for c, word in (("best", N_("best")), ("last", N_("last")), ("min", N_("min")), ("max", N_("max")))}})
    with diff_tab:
        diff = config_diff({names[i]: configs[i] for i in selected})
        if diff.empty:
            st.info(t("The selected runs have identical configurations.") if len(selected) > 1 else
                    t("Select at least two runs to see how their configurations differ."))
        else:
            st.dataframe(diff.rename_axis(t("field")), width="stretch")
    with hp_tab:
        values = dict(zip(best.run_id, best.value)) if not best.empty else {}
        runs = store().list_runs()
        table = hparam_table(runs[runs.id.isin(selected)], configs, values)
        if len(selected) < 2 or table.shape[1] <= 3:
            st.info(t("Select runs that differ in some hyperparameters to see them against the metric."))
        else:
            table = table.rename(columns={"metric": key}) if "metric" in table else table
            st.plotly_chart(parallel_figure(table, key), key="cmp_parallel")
    with export_tab:
        from core.analysis import export_metrics_csv, export_runs_json
        st.caption(t("Files are built when you click, from the full histories."))
        c1, c2 = st.columns(2)
        c1.download_button(t("Metrics (tidy CSV)"), lambda: export_metrics_csv(store(), selected), file_name="runs-metrics.csv",
                           mime="text/csv", icon=":material/download:", on_click="ignore")
        c2.download_button(t("Configs and summaries (JSON)"), lambda: export_runs_json(store(), selected),
                           file_name="runs-configs.json", mime="application/json", icon=":material/download:",
                           on_click="ignore")
        st.download_button(t("TensorBoard event files (zip)"), lambda: _tensorboard_zip(selected),
                           file_name="runs-tensorboard.zip", mime="application/zip", icon=":material/download:",
                           on_click="ignore", key="runs_tensorboard")
        st.caption(t("Unzip it and run `tensorboard --logdir` on the folder: scalars, samples and hyperparameters "
                     "(HParams) of every selected run."))


def _tensorboard_zip(run_ids: list[str]) -> bytes:
    from core.analysis.tensorboard import tensorboard_zip
    return tensorboard_zip(store(), run_ids)


def _restore_view(keys: list[str]) -> None:
    """The comparison's metrics, axis, smoothing and scale: from a shared link on first view, else as left."""
    state, params = st.session_state, st.query_params
    if "cmp_metrics" not in state or not set(state["cmp_metrics"]) <= set(keys):
        wanted = [k for k in params.get("metric", "").split(",") if k in keys]
        state["cmp_metrics"] = wanted or ["val_acc" if "val_acc" in keys else keys[0]]
    if "cmp_x" not in state:
        state["cmp_x"] = params.get("x") if params.get("x") in ("step", "epoch", "time") else "step"
    if "cmp_smooth" not in state:
        try:
            state["cmp_smooth"] = min(0.99, max(0.0, float(params.get("smooth", 0.0))))
        except ValueError:
            state["cmp_smooth"] = 0.0
    if "cmp_log" not in state:
        state["cmp_log"] = params.get("log") == "1"


def _share_view(metrics: list[str], x: str, smoothing: float, log_y: bool) -> None:
    """Keep the address bar's link to this comparison whole: runs (set by the page) and this view."""
    values = {"metric": ",".join(metrics), "x": x, "smooth": f"{smoothing:g}", "log": "1" if log_y else "0"}
    for name, value in values.items():
        if st.query_params.get(name) != value:
            st.query_params[name] = value


def _share_x_range(figures, curves) -> None:
    """Small multiples read together only when their x-axes match: one range for all of them."""
    spans = [(frame["x"].min(), frame["x"].max()) for frame in curves if not frame.empty]
    if len(spans) < 1:
        return
    low, high = min(s[0] for s in spans), max(s[1] for s in spans)
    for figure in figures:
        figure.update_xaxes(range=[low, high])


def manage_section(selected: list[str], details: dict) -> None:
    with st.expander(t("Rename, tag, annotate or delete the selected runs"), icon=":material/edit:"):
        if len(selected) == 1:
            run = details[selected[0]]
            name = st.text_input(t("Name"), value=run.name, key=f"rename-{run.id}")
            notes = st.text_area(t("Notes"), value=run.notes or "", key=f"notes-{run.id}")
            if st.button(t("Save name and notes"), key="save-meta"):
                store().rename(run.id, name)
                store().set_notes(run.id, notes)
                st.toast(t("Saved"), icon=":material/check:")
                st.rerun()
        tag_text = st.text_input(t("Add tags (comma-separated)"), key="add-tags", placeholder=t("baseline, augmented"))
        if st.button(t("Add tags"), key="tags-btn") and tag_text.strip():
            new = [tag.strip() for tag in tag_text.split(",") if tag.strip()]
            for run_id in selected:
                store().set_tags(run_id, sorted(set(details[run_id].tags or []) | set(new)))
            st.rerun()
        st.divider()
        confirm = st.checkbox(t("Yes, delete {count} run(s) and their checkpoints", count=len(selected)),
                              key="confirm-delete")
        if st.button(t("Delete"), type="primary", disabled=not confirm, icon=":material/delete:", key="delete-btn"):
            active = [r for r in selected if details[r].status in ("queued", "running")]
            if active:
                st.error(t("Cancel running or queued runs before deleting them: {runs}", runs=", ".join(active)))
            else:
                from core import jobs
                for run_id in selected:
                    jobs.delete_run(run_id)
                st.session_state.pop("runs_table", None)
                st.rerun()
