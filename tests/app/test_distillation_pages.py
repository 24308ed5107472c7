"""Knowledge distillation on the pages: the Train form's Teacher box, and a finished student beside its teacher and
the same student without a teacher (in English and in 中文). Tiny real runs on the digits, made once."""

from __future__ import annotations

import pytest

from conftest import open_page, train_in_process
from test_chinese import check, run_names

TINY = {"data.limit": 300, "optim.epochs": 1}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """{"teacher", "student0" and "plain" (its baseline), "student" (another seed than its teacher's, no baseline
    yet)} in one LAB_HOME."""
    import torch

    from core.presets import preset
    from core.tasks.distillation.runs import baseline_config
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAB_HOME", str(tmp_path_factory.mktemp("distill-pages") / "lab"))
        patch.setenv("LAB_HEARTBEAT_S", "0.2")
        try:
            teacher = train_in_process(preset("digits-cnn").replace(**TINY))
            student0 = preset("digits-distill").replace(**TINY, **{"task_options.teacher": teacher,
                                                                   "task_options.alpha": 0.5})
            runs = {"teacher": teacher, "student0": train_in_process(student0),
                    "plain": train_in_process(baseline_config(student0)),
                    "student": train_in_process(student0.replace(**{"optim.epochs": 2, "seed": 1}))}
        finally:
            torch.set_num_threads(threads)
        yield runs
        from core.inference import clear_caches
        clear_caches()


@pytest.fixture
def missing():
    from ui import i18n
    i18n.MISSING.clear()
    yield i18n.MISSING
    i18n.MISSING.clear()


def test_the_students_page_shows_teacher_and_baseline_then_classification_results(lab):
    at = open_page("app_pages/train.py", run=lab["student0"])
    labels = [m.label for m in at.metric]
    assert {"Student: best validation accuracy", "Same student, no teacher", "Teacher"} <= set(labels)
    assert any(s.value == "Tools" for s in at.subheader)  # classification's results follow: confusion matrix, Tools
    assert not [b for b in at.button if b.label == "Train the same student without a teacher"]
    assert not [c for c in at.caption if "another seed" in c.value]  # the teacher split the data as the student did


def test_the_students_page_in_chinese(lab, missing):
    for run_id in (lab["student0"], lab["student"]):
        check(open_page("app_pages/train.py", lang="zh", run=run_id), missing, run_names(lab))


def test_without_a_baseline_the_page_offers_to_train_it(lab, no_workers):
    from core.store import RunStore
    at = open_page("app_pages/train.py", run=lab["student"])
    assert [c for c in at.caption if "The teacher split the data with another seed" in c.value]
    button = next(b for b in at.button if b.label == "Train the same student without a teacher")
    button.click().run()
    assert not at.exception
    (submitted,) = no_workers
    run = RunStore().get_run(submitted)
    assert run.task == "classification" and run.name == "digits-distill-no-teacher"
    assert run.config["optim"]["epochs"] == 2 and run.config["task_options"] == {}
    RunStore().delete_run(submitted)


def test_the_train_form_offers_the_finished_classifiers_as_teachers(lab, missing):
    at = open_page("app_pages/train.py", preset="digits-distill")
    teacher = at.selectbox(key="cfg.task_options.teacher")
    assert any(lab["teacher"] in option for option in teacher.options)
    teacher.set_value(lab["teacher"]).run()
    assert not at.exception and not at.error  # a valid config: nothing refused
    assert at.number_input(key="cfg.task_options.temperature").value == 4.0
    check(open_page("app_pages/train.py", lang="zh", preset="digits-distill"), missing, run_names(lab))


def test_without_a_teacher_the_form_loads_the_teachers_preset(lab_home):
    at = open_page("app_pages/train.py", preset="digits-distill")
    assert any("No finished image classifier" in i.value for i in at.info)
    assert at.error[0].value.startswith("task_options.teacher: no teacher chosen")
    at.button(key="distill_teacher_preset").click().run()
    assert not at.exception
    assert at.session_state["cfg.task"] == "classification" and at.session_state["preset_choice"] == "digits-cnn"
