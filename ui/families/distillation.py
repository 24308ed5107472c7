"""Knowledge distillation on the pages: the Train form is image classification's with a Teacher box on top (the
teacher picked among the finished classifiers of the chosen data set, temperature and α from the task's option
schema); a finished student shows its accuracy beside its teacher's and the same student's without a teacher,
then classification's results (confusion matrix, Tools). Media classifies with it as with any image classifier."""

from __future__ import annotations

import streamlit as st

from core.errors import LabError
from ui.forms import PREFIX, form_config, load_into_form, options_section
from ui.i18n import N_, t
from ui.resources import TRAIN_PAGE, show_error

TASK = "distillation"

# Texts core gives the pages for this family (its title and description, its options' labels and help, its presets'
# descriptions, the messages of its checks that t_core translates, the metric titles of its soft and hard losses),
# named here so that the catalogue's checks find them (ui/locale/zh/distillation.toml).
CORE_TEXTS = (
    N_("Knowledge distillation"),
    N_("Train a small image classifier on a finished classifier's softened predictions (Hinton et al., 2015) as "
       "well as on the labels"),
    N_("Teacher run"),
    N_("A finished image classification run on the same data set: the student learns from its softened predictions"),
    N_("Temperature (T)"),
    N_("Divides both models' logits before the softmax; higher spreads the teacher's probability over more classes"),
    N_("Soft-loss weight (α)"),
    N_("Weight of the teacher's soft targets; the labels' cross-entropy gets 1 − α. 0 trains without the teacher"),
    N_("A small MLP (32 wide) on the 8x8 digits, taught by a finished digits-cnn run (Hinton et al., 2015); offline, "
       "seconds on a CPU"),
    N_("A small MLP (64 wide) on generated coloured shapes, taught by a finished shapes-cnn run; offline, fast demo"),
    N_("task_options.teacher: no teacher chosen; train one first, e.g. python -m core train --preset {preset}, then "
       "add --set task_options.teacher=RUN_ID"),
    N_("task_options.teacher: no teacher chosen; train an image classifier on the same data first, then add "
       "--set task_options.teacher=RUN_ID"),
    N_("training soft loss"), N_("training hard loss"), N_("training (epoch mean) soft loss"),
    N_("training (epoch mean) hard loss"),
)


# ---- Train: the form ---------------------------------------------------------------------------

def form(has_cuda: bool):
    """The Teacher box, then image classification's whole form (data, student model, optimisation, compute, and
    its previews); returns the config they describe. The Teacher box comes first: its choice must be in the
    session state when classification's form reads the config."""
    from ui.families.classification import form as classification_form
    with st.container(border=True):
        st.subheader(t("Teacher"), anchor=False)
        _teacher_section()
    return classification_form(has_cuda)


def _teacher_section() -> None:
    from core.presets.distillation import TEACHER_PRESETS
    from core.tasks import task_spec
    from core.tasks.distillation.runs import teacher_candidates

    spec = task_spec(TASK)
    st.caption(t(spec.description))
    config = form_config()  # the data set chosen below (its value from the previous drawing)
    key = PREFIX + "task_options.teacher"
    try:
        candidates = teacher_candidates(config)
    except LabError as exc:
        show_error(exc)
        candidates = []
    if candidates:
        ids = [c["run_id"] for c in candidates]
        if st.session_state.get(key) not in ids:
            st.session_state[key] = ids[0]  # the newest
        labels = {c["run_id"]: _label(c) for c in candidates}
        st.selectbox(t("Teacher run"), ids, key=key, format_func=labels.get, help=t(spec.options["teacher"].help))
    else:
        st.session_state[key] = ""
        st.info(t("No finished image classifier on this data set yet: the student needs one as its teacher."),
                icon=":material/school:")
        hint = TEACHER_PRESETS.get(config.data.name)
        if hint:
            st.button(t("Train a teacher first: load the {preset} preset", preset=hint), key="distill_teacher_preset",
                      on_click=_load_teacher_preset, args=(hint,), icon=":material/model_training:")
    options_section("task_options", {name: option for name, option in spec.options.items() if name != "teacher"})


def _label(candidate: dict) -> str:
    acc = candidate["val_acc"]
    shown = f" · {t('accuracy')} {acc:.1%}" if acc is not None else ""
    return f"{candidate['name']} · {candidate['model']}{shown} · {candidate['run_id']}"


def _load_teacher_preset(name: str) -> None:
    """on_click (before the widgets are drawn again): the form switches to the teacher's preset and task."""
    from core.presets import preset
    st.session_state["preset_choice"] = name
    load_into_form(preset(name))


# ---- Train: a finished run ---------------------------------------------------------------------

def results(run) -> None:
    """The student beside its teacher and its baseline (the same student trained without a teacher), then image
    classification's results of the student's checkpoint (confusion matrix, Tools)."""
    from core.tasks import task_spec
    from ui.families.classification import results as classification_results
    st.subheader(t("Student, teacher and no teacher"), anchor=False)
    try:
        compared = task_spec(TASK).entry("compare")(run.id)
    except LabError as exc:
        show_error(exc)
    else:
        _comparison(run, compared)
    classification_results(run)


def _percent(value) -> str:
    return f"{value:.1%}" if isinstance(value, (int, float)) else "–"


def _points(a, b) -> str | None:
    """a − b in percentage points, signed (st.metric colours it by its sign), or None when either is missing."""
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        return None
    return t("{delta} points", delta=f"{(a - b) * 100:+.1f}")


def _comparison(run, compared: dict) -> None:
    student, teacher, baseline = compared["student"], compared["teacher"], compared["baseline"]
    mine = student["val_acc"] if student else None
    c1, c2, c3 = st.columns(3)
    c1.metric(t("Student: best validation accuracy"), _percent(mine),
              delta=_points(mine, baseline["val_acc"]) if baseline else None,
              help=t("The delta is against the same student trained without a teacher."))
    c2.metric(t("Same student, no teacher"), _percent(baseline["val_acc"]) if baseline else "–")
    c3.metric(t("Teacher"), _percent(teacher["val_acc"]) if teacher else "–",
              delta=_points(teacher["val_acc"], mine) if teacher else None, delta_color="off",
              help=t("The delta is the teacher's lead over the student."))
    if compared["same_split"] is False:
        st.caption(":material/warning: " + t("The teacher split the data with another seed or validation fraction: "
                                             "some of the student's validation images were among its training "
                                             "images, which can flatter the student."))
    if baseline is None:
        _baseline_button(run)
    elif baseline["status"] != "completed":
        st.caption(t("The run without a teacher is {status}.", status=t(baseline["status"])))
    if compared["curves"]:
        st.plotly_chart(_curves_figure(compared["curves"]), key=f"distill-curves-{run.id}")


def _curves_figure(curves: dict):
    import plotly.graph_objects as go

    from ui.charts import base_layout
    names = {"student": t("student"), "baseline": t("same student, no teacher")}
    fig = go.Figure()
    for role, points in curves.items():
        fig.add_trace(go.Scatter(x=[e for e, _ in points], y=[v for _, v in points], mode="lines+markers",
                                 name=names[role], line=dict(dash="solid" if role == "student" else "dot")))
    fig.update_xaxes(title_text=t("epoch"))
    fig.update_yaxes(title_text=t("validation accuracy"), tickformat=".0%")
    return base_layout(fig, 260)


def _baseline_button(run) -> None:
    from core.config import RunConfig
    from core.tasks.distillation.runs import baseline_config
    st.info(t("No run of this student without a teacher yet: train one to see what the teacher adds."),
            icon=":material/compare_arrows:")
    if st.button(t("Train the same student without a teacher"), key=f"distill-baseline-{run.id}",
                 icon=":material/play_arrow:"):
        from core import jobs
        try:
            baseline_id = jobs.submit(baseline_config(RunConfig.from_dict(run.config)))
        except Exception as exc:
            show_error(exc)
            return
        st.success(t("Submitted run {run}: this page compares it once it has finished.", run=baseline_id),
                   icon=":material/check:")
        st.page_link(TRAIN_PAGE, label=t("Watch it on the Train page"), query_params={"run": baseline_id},
                     icon=":material/visibility:")


# ---- Media ---------------------------------------------------------------------------------------

def media(source: dict) -> None:
    """The student is an image classifier: classification's Media tabs."""
    from ui.families.classification import media as classification_media
    classification_media(source)
