"""Knowledge distillation: the loss against its definition, α = 0 against plain classification (the same steps and
weights), the teacher's checks, the baseline and teacher look-ups, the student read as an ordinary classifier and
exported. Real tiny runs on the digits, trained once for the module; its pages: tests/app/test_distillation_pages.py."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from conftest import train_in_process
from core.errors import ConfigError

TINY = {"data.limit": 400, "optim.epochs": 1, "log_every": 1}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """{"teacher", "student0" (α = 0), "plain" (the same student without a teacher), "student" (α = 0.9)}."""
    from core.presets import preset
    from core.tasks.distillation.runs import baseline_config
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAB_HOME", str(tmp_path_factory.mktemp("distill") / "lab"))
        patch.setenv("LAB_HEARTBEAT_S", "0.2")
        try:
            teacher = train_in_process(preset("digits-cnn").replace(**{**TINY, "optim.epochs": 3}))
            student0 = preset("digits-distill").replace(**TINY, **{"task_options.teacher": teacher,
                                                                   "task_options.alpha": 0.0, "model.dropout": 0.2})
            runs = {"teacher": teacher, "student0": train_in_process(student0),
                    "plain": train_in_process(baseline_config(student0)),
                    "student": train_in_process(preset("digits-distill").replace(
                        **{**TINY, "optim.epochs": 5, "task_options.teacher": teacher}))}
        finally:
            torch.set_num_threads(threads)
        yield runs
        from core.inference import clear_caches
        clear_caches()


def config_of(run_id: str):
    from core.config import RunConfig
    from core.store import RunStore
    return RunConfig.from_dict(RunStore().get_run(run_id).config)


def series(run_id: str, key: str) -> list[float]:
    from core.store import RunStore
    return RunStore().metric_series([run_id], [key])[run_id][key]


def fake_run(config, status: str = "completed", checkpoint: bool = True) -> str:
    """A run recorded in the store with a (dummy) best.pt, as the teacher checks see it, without training it."""
    from core.paths import run_dir
    from core.store import RunStore
    run_id = RunStore().create_run(config.to_dict(), name=config.display_name(), status="queued")
    if status != "queued":
        RunStore().finish(run_id, status)
    if checkpoint:
        run_dir(run_id).mkdir(parents=True, exist_ok=True)
        (run_dir(run_id) / "best.pt").write_bytes(b"")
    return run_id


# ---- the loss -----------------------------------------------------------------------------------------------

def test_soft_loss_is_t_squared_kl_of_the_softened_distributions_and_its_gradient_is_known():
    from core.tasks.distillation import soft_loss
    torch.manual_seed(0)
    student, teacher, t = torch.randn(5, 7, requires_grad=True), torch.randn(5, 7), 3.0
    p_t, p_s = torch.softmax(teacher / t, 1), torch.softmax(student / t, 1)
    expected = t * t * (p_t * (p_t.log() - p_s.log())).sum(1).mean()
    loss = soft_loss(student, teacher, t)
    assert torch.allclose(loss, expected, atol=1e-6)
    loss.backward()
    # d/ds of T²·KL(p_t ‖ softmax(s/T)), averaged over the batch: T (p_s − p_t) / B (Hinton et al. 2015, eq. 2)
    assert torch.allclose(student.grad, t * (p_s - p_t).detach() / 5, atol=1e-6)
    assert soft_loss(teacher, teacher, t).abs() < 1e-6  # the same logits: nothing to learn


def test_the_training_step_weighs_soft_and_hard_parts_and_never_trains_the_teacher():
    from core.tasks.distillation import DistillationTask, soft_loss
    torch.manual_seed(0)
    student, teacher = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3).eval()
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    task = DistillationTask(num_classes=3, teacher=teacher, temperature=2.0, alpha=0.25)
    loss, sums = task.training_step(student, (x, y))
    soft, hard = soft_loss(student(x), teacher(x), 2.0), F.cross_entropy(student(x), y)
    assert torch.allclose(loss, 0.25 * soft + 0.75 * hard, atol=1e-6)
    loss.backward()
    assert all(p.grad is None for p in teacher.parameters())
    metrics = task.summarize(sums)
    assert metrics["soft_loss"] == pytest.approx(float(soft.detach()), abs=1e-5)
    assert metrics["hard_loss"] == pytest.approx(float(hard.detach()), abs=1e-5)


def test_the_teacher_sees_the_batch_in_its_own_normalisation():
    from core.tasks.distillation import renormaliser
    student_pre, teacher_pre = {"mean": [0.2, 0.4], "std": [0.5, 0.25]}, {"mean": [0.5, 0.1], "std": [0.2, 0.3]}
    pixels = torch.rand(3, 2, 4, 4)  # (B, C, H, W) in [0, 1]
    column = lambda values: torch.tensor(values).view(1, -1, 1, 1)  # noqa: E731
    as_student = (pixels - column(student_pre["mean"])) / column(student_pre["std"])
    as_teacher = (pixels - column(teacher_pre["mean"])) / column(teacher_pre["std"])
    assert torch.allclose(renormaliser(student_pre, teacher_pre, "cpu")(as_student), as_teacher, atol=1e-6)
    assert renormaliser(student_pre, dict(student_pre), "cpu") is None


# ---- α = 0 is plain classification --------------------------------------------------------------------------

def test_alpha_zero_trains_exactly_as_plain_classification(lab):
    from core.engine.checkpoint import load_checkpoint
    from core.paths import run_dir
    distilled, plain = lab["student0"], lab["plain"]
    assert config_of(plain).task == "classification" and config_of(plain).model.dropout == 0.2  # dropout draws RNG
    losses = series(distilled, "train_loss")
    assert len(losses) >= 5 and losses == series(plain, "train_loss")  # every step's loss, bit for bit
    assert series(distilled, "train_hard_loss") == losses
    assert series(distilled, "val_acc") == series(plain, "val_acc")
    ours, theirs = (load_checkpoint(run_dir(r) / "last.pt", map_location="cpu")["model"] for r in (distilled, plain))
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_the_student_learns_the_teachers_soft_targets(lab):
    soft = series(lab["student"], "epoch_train_soft_loss")
    assert len(soft) == 5 and soft == sorted(soft, reverse=True) and soft[-1] < 0.75 * soft[0], soft
    from core.store import RunStore
    summary = RunStore().get_run(lab["student"]).summary
    assert summary["best_val_acc"] > 0.3  # ten classes: chance is 0.1 (a tiny teacher, 400 images, a few steps)


# ---- checks -------------------------------------------------------------------------------------------------

def test_the_teacher_is_checked_and_each_message_names_the_field(lab):
    from core import jobs
    from core.presets import preset
    from core.tasks import validate
    base = preset("digits-distill")
    with pytest.raises(ConfigError, match=r"^task_options.teacher: no teacher chosen; .*--preset digits-cnn, then add "
                                          r"--set task_options.teacher=RUN_ID"):
        validate(base)
    with pytest.raises(ConfigError, match="^task_options.teacher: no teacher chosen; train an image classifier"):
        validate(base.replace(**{"data.name": "fashion-mnist"}))
    cases = {
        "nope": "task_options.teacher: no run with id 'nope'",
        jobs.create(preset("digits-cnn")): "is queued; pick a finished run",
        fake_run(preset("digits-cnn"), checkpoint=False): "saved no best checkpoint",
        fake_run(preset("shapes-cnn")): r"was trained on other data \('shapes'\)",
        fake_run(preset("digits-dcgan")): "is a generative adversarial network run|is a .* run; the teacher must be",
    }
    for teacher, message in cases.items():
        with pytest.raises(ConfigError, match=message):
            validate(base.replace(**{"task_options.teacher": teacher}))
    bigger = fake_run(preset("digits-cnn").replace(**{"data.image_size": 16}))
    with pytest.raises(ConfigError, match=r"^data.image_size: the teacher .* takes 16px images; set data.image_size to 16"):
        validate(base.replace(**{"task_options.teacher": bigger}))
    with pytest.raises(ConfigError, match="task_options.alpha"):
        validate(base.replace(**{"task_options.teacher": lab["teacher"], "task_options.alpha": 1.5}))
    with pytest.raises(ConfigError, match="^model.name"):  # the student's own fields, as classification checks them
        validate(base.replace(**{"task_options.teacher": lab["teacher"], "model.name": "char_gpt"}))
    assert validate(base.replace(**{"task_options.teacher": lab["teacher"]}))


def test_teacher_candidates_and_the_baseline_are_found_by_data_model_optimisation_and_seed(lab):
    from core.presets import preset
    from core.tasks.distillation.runs import baseline_config, find_baseline, teacher_candidates
    student = config_of(lab["student0"])
    found = teacher_candidates(student)
    # the digits classifiers that finished: the teacher, the plain student, and the distilled students themselves
    assert {c["run_id"] for c in found} == {lab["teacher"], lab["plain"], lab["student0"], lab["student"]}
    assert not {c["run_id"] for c in teacher_candidates(preset("shapes-distill"))} & set(lab.values())
    assert find_baseline(student) == lab["plain"]
    assert find_baseline(student.replace(seed=1)) is None
    assert find_baseline(config_of(lab["student"])) is None  # 5 epochs: no plain run of that yet
    plain = baseline_config(student)
    assert plain.task == "classification" and plain.task_options == {} and plain.name == "digits-distill-no-teacher"


def test_the_comparison_puts_the_student_beside_its_teacher_and_baseline(lab):
    from core.tasks import task_spec
    compared = task_spec("distillation").entry("compare")(lab["student0"])
    assert compared["student"]["run_id"] == lab["student0"] and compared["teacher"]["run_id"] == lab["teacher"]
    assert compared["baseline"]["run_id"] == lab["plain"]
    assert compared["student"]["val_acc"] == compared["baseline"]["val_acc"]
    assert compared["curves"]["student"] == compared["curves"]["baseline"] == [(1.0, compared["student"]["val_acc"])]
    assert compared["same_split"] is True  # the teacher's seed and validation fraction: the student's val is unseen
    alone = task_spec("distillation").entry("compare")(lab["student"])
    assert alone["baseline"] is None and set(alone["curves"]) == {"student"}


# ---- the student is an ordinary classifier ------------------------------------------------------------------

def test_the_students_checkpoint_is_read_by_classifications_entry_points(lab):
    from core.store import RunStore
    from core.tasks import task_spec
    from core.tasks.checkpoints import load_run_model
    run_id, spec = lab["student"], task_spec("distillation")
    summary = RunStore().get_run(run_id).summary
    predictor = spec.entry("predict")(run_id)
    assert len(predictor.classes) == 10 and predictor.image_size == 8
    report = spec.entry("evaluate")(run_id, "best")
    assert report.accuracy == pytest.approx(summary["best_val_acc"], abs=1e-6)
    run_model = load_run_model(run_id)
    assert run_model.metadata["teacher"]["run_id"] == lab["teacher"]
    data = spec.entry("run_data")(run_model)
    assert data.evaluate(run_model.model) == pytest.approx(summary["best_val_acc"], abs=1e-6)


def test_the_student_exports_like_a_classifier(lab):
    from core.toolkit.export import export_run
    result = export_run(lab["student"], "safetensors")
    assert result.max_abs_diff == 0.0 and result.inputs == "validation"
