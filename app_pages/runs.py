"""Runs: every run in a table; select several to overlay their metrics, diff configs and export."""

import streamlit as st

from ui.i18n import t
from ui.resources import TRAIN_PAGE, duration, store

st.title(t("Runs"))
runs = store().list_runs()
if runs.empty:
    st.info(t("No runs yet. Start one from Home or Train."), icon=":material/lightbulb:")
    st.stop()

# A link may ask for a sweep (?sweep=ID) or for the table (?view=runs&compare=...): it wins once.
asked = "runs" if st.query_params.get("view") == "runs" else "sweeps" if st.query_params.get("sweep") else None
if asked and st.session_state.get("_runs_view_asked") != (asked, st.query_params.get("sweep")):
    st.session_state["_runs_view_asked"] = (asked, st.query_params.get("sweep"))
    st.session_state["runs_view"] = asked
if "view" in st.query_params:
    del st.query_params["view"]
views = {"runs": t("All runs"), "sweeps": t("Sweeps")}
view = st.segmented_control(t("View"), list(views), key="runs_view", default="runs", required=True,
                            format_func=views.get, label_visibility="collapsed")
if view == "sweeps":
    from ui.sweeps_view import sweeps_view
    sweeps_view()
    st.stop()
if "sweep" in st.query_params:
    del st.query_params["sweep"]

from core.analysis import RUNS_COLUMN_ORDER, filter_runs, runs_table  # noqa: E402  (after the cheap empty check)
from ui.runs_view import RUN_COLUMNS, choose, compare_section, manage_section  # noqa: E402

details = store().get_runs()
table = runs_table(runs, {i: r.config for i, r in details.items()}, {i: r.summary for i, r in details.items()})

with st.container(border=True):
    c1, c2, c3, c4, c5 = st.columns([2, 1, 1, 1, 1])
    text = c1.text_input(t("Search"), placeholder=t("name, id, model, data set, tag"), key="runs_search")
    status_words = {status: t(status) for status in sorted(table.status.unique())}
    statuses = c2.multiselect(t("Status"), list(status_words), format_func=status_words.get, key="runs_status",
                              placeholder=choose(status_words))
    dataset_names = sorted(table.dataset.dropna().unique())
    datasets = c3.multiselect(t("Data set"), dataset_names, key="runs_dataset", placeholder=choose(dataset_names))
    model_names = sorted(table.model.dropna().unique())
    models = c4.multiselect(t("Model"), model_names, key="runs_model", placeholder=choose(model_names))
    all_tags = sorted({tag for tags in runs.tags for tag in (tags or [])})
    tags = c5.multiselect(t("Tag"), all_tags, key="runs_tags", placeholder=choose(all_tags))
shown = filter_runs(table, text=text, statuses=statuses, datasets=datasets, models=models, tags=tags)

st.caption(t("{shown} of {total} runs · select rows to compare them", shown=len(shown), total=len(table)))
wanted = [r for r in st.query_params.get("compare", "").split(",") if r]  # a shared comparison link
preselected = [i for i, run_id in enumerate(shown["id"]) if run_id in wanted]
event = st.dataframe(
    shown.assign(status=shown.status.map(status_words)), hide_index=True, width="stretch", on_select="rerun",
    selection_mode="multi-row", key="runs_table",
    selection_default={"selection": {"rows": preselected}} if preselected else None,
    column_order=RUNS_COLUMN_ORDER,  # what people compare first, before the scroll
    column_config={
        "id": st.column_config.TextColumn(t("id"), width=150, pinned=True),  # the whole id: many share a prefix
        "name": st.column_config.TextColumn(t("name"), pinned=True),
        "status": st.column_config.TextColumn(t("status")),
        "best_val_acc": st.column_config.ProgressColumn(t("best val acc"), min_value=0, max_value=1, format="%.3f"),
        "last_val_acc": st.column_config.NumberColumn(t("last val acc"), format="%.3f"),
        "best_metric": st.column_config.TextColumn(t("watched metric"), help=t("what each run's task optimises")),
        "best_value": st.column_config.NumberColumn(t("best of it"), format="%.4g"),
        "duration_s": st.column_config.NumberColumn(t("duration (s)"), format="%.0f"),
        "lr": st.column_config.NumberColumn(t("lr"), format="%.2e"),
        "created": st.column_config.DatetimeColumn(t("created"), format="YYYY-MM-DD HH:mm"),
        **{column: st.column_config.Column(t(title)) for column, title in RUN_COLUMNS.items()},
    })
rows = event.selection.rows if event and event.selection else []
selected = [shown.iloc[i]["id"] for i in rows if i < len(shown)]  # a filter may have shrunk the table
if selected:
    st.query_params["compare"] = ",".join(selected)  # the address bar now links to this comparison
elif "compare" in st.query_params:
    del st.query_params["compare"]

if not selected:
    st.info(t("Select one or more runs in the table to compare their curves, configs and statistics."),
            icon=":material/touch_app:")
    st.stop()

names = {run_id: f"{details[run_id].name} ({run_id[-4:]})" for run_id in selected}
for run_id in selected[:6]:
    st.page_link(TRAIN_PAGE, label=t("Open {run} · {status} · {duration}", run=names[run_id],
                                     status=t(details[run_id].status), duration=duration(details[run_id].duration_s)),
                 query_params={"run": run_id}, icon=":material/open_in_new:")
compare_section(selected, names, {i: details[i].config for i in selected})

from ui.families import hook  # noqa: E402
by_task: dict[str, list[str]] = {}
for run_id in selected:
    by_task.setdefault(details[run_id].task, []).append(run_id)
for task, run_ids in by_task.items():  # e.g. the fusion variants of video runs, an autoencoder's latent space
    extra = hook(task, "runs_extra")
    if extra:
        extra(run_ids)
manage_section(selected, details)
