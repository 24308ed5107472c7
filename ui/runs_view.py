"""The Runs page's comparison and management sections for the selected runs."""

from __future__ import annotations

import streamlit as st

from ui.charts import overlay_figure, parallel_figure
from ui.resources import store


def compare_section(selected: list[str], names: dict[str, str], configs: dict[str, dict]) -> None:
    from core.analysis import compare_runs, config_diff, hparam_table
    keys = store().metric_keys(selected)
    if not keys:
        st.info("The selected runs have no metrics yet.")
        return
    with st.container(border=True):
        c1, c2, c3, c4 = st.columns([2, 2, 2, 1])
        key = c1.selectbox("Metric", keys, index=keys.index("val_acc") if "val_acc" in keys else 0,
                           key="cmp_metric")
        x = c2.segmented_control("x-axis", ["step", "epoch", "time"], default="step", key="cmp_x", required=True)
        smoothing = c3.slider("Smoothing (EMA)", 0.0, 0.99, 0.0, 0.01, key="cmp_smooth")
        log_y = c4.toggle("log scale", key="cmp_log")
        result = compare_runs(store(), selected, key, x=x, smoothing=smoothing)
        best = result.best
        st.plotly_chart(overlay_figure(result.curves, best, names, key=key, x=x, log_y=log_y, smoothed=smoothing > 0),
                        key="cmp_chart")

    stats_tab, diff_tab, hp_tab, export_tab = st.tabs(["Statistics", "Config diff", "Hyperparameters", "Export"])
    with stats_tab:
        stats = result.stats.copy()
        stats.insert(1, "name", stats.run_id.map(names))
        st.caption(f"over each run's full history; best = {'highest' if result.mode == 'max' else 'lowest'} {key}")
        st.dataframe(stats, hide_index=True, width="stretch")
    with diff_tab:
        diff = config_diff({names[i]: configs[i] for i in selected})
        if diff.empty:
            st.info("The selected runs have identical configurations." if len(selected) > 1 else
                    "Select at least two runs to see how their configurations differ.")
        else:
            st.dataframe(diff, width="stretch")
    with hp_tab:
        values = dict(zip(best.run_id, best.value)) if not best.empty else {}
        runs = store().list_runs()
        table = hparam_table(runs[runs.id.isin(selected)], configs, values)
        if len(selected) < 2 or table.shape[1] <= 3:
            st.info("Select runs that differ in some hyperparameters to see them against the metric.")
        else:
            table = table.rename(columns={"metric": key}) if "metric" in table else table
            st.plotly_chart(parallel_figure(table, key), key="cmp_parallel")
    with export_tab:
        from core.analysis import export_metrics_csv, export_runs_json
        st.caption("Files are built when you click, from the full histories.")
        c1, c2 = st.columns(2)
        c1.download_button("Metrics (tidy CSV)", lambda: export_metrics_csv(store(), selected), file_name="runs-metrics.csv",
                           mime="text/csv", icon=":material/download:", on_click="ignore")
        c2.download_button("Configs and summaries (JSON)", lambda: export_runs_json(store(), selected),
                           file_name="runs-configs.json", mime="application/json", icon=":material/download:",
                           on_click="ignore")


def manage_section(selected: list[str], details: dict) -> None:
    with st.expander("Rename, tag, annotate or delete the selected runs", icon=":material/edit:"):
        if len(selected) == 1:
            run = details[selected[0]]
            name = st.text_input("Name", value=run.name, key=f"rename-{run.id}")
            notes = st.text_area("Notes", value=run.notes or "", key=f"notes-{run.id}")
            if st.button("Save name and notes", key="save-meta"):
                store().rename(run.id, name)
                store().set_notes(run.id, notes)
                st.toast("Saved", icon=":material/check:")
                st.rerun()
        tag_text = st.text_input("Add tags (comma-separated)", key="add-tags", placeholder="baseline, augmented")
        if st.button("Add tags", key="tags-btn") and tag_text.strip():
            new = [t.strip() for t in tag_text.split(",") if t.strip()]
            for run_id in selected:
                store().set_tags(run_id, sorted(set(details[run_id].tags or []) | set(new)))
            st.rerun()
        st.divider()
        confirm = st.checkbox(f"Yes, delete {len(selected)} run(s) and their checkpoints", key="confirm-delete")
        if st.button("Delete", type="primary", disabled=not confirm, icon=":material/delete:", key="delete-btn"):
            active = [r for r in selected if details[r].status in ("queued", "running")]
            if active:
                st.error("Cancel running or queued runs before deleting them: " + ", ".join(active))
            else:
                from core import jobs
                for run_id in selected:
                    jobs.delete_run(run_id)
                st.session_state.pop("runs_table", None)
                st.rerun()
