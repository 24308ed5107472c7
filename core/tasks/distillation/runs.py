"""The runs a distillation run is measured against: the teachers it may learn from (finished image classifiers of
the same data), its baseline (the same student trained without a teacher: same data, model, optimisation and
seed), and the comparison of student, teacher and baseline the student's page shows."""

from __future__ import annotations

from core.errors import ConfigError, LabError

# the fields of two data configs that must agree for two runs to see the same images and classes (the sample
# count only matters for generated data sets)
SAME_DATA = ("name", "path", "options")


def same_data(a: dict, b: dict) -> bool:
    """Whether two runs' data configs (dicts) describe the same images and classes."""
    from core.data import dataset_info, list_datasets
    if any(a.get(key) != b.get(key) for key in SAME_DATA):
        return False
    name = a.get("name")
    generated = name in list_datasets(kind=None) and dataset_info(name).generated
    return not generated or a.get("num_samples") == b.get("num_samples")


def is_classifier(task: str) -> bool:
    from core.tasks.classification.predictor import is_classifier_task
    return is_classifier_task(task)


def image_size(config) -> int:
    """The square size a run of `config` trains at (a folder's native size within the model's bounds)."""
    from core.data import dataset_info
    from core.tasks.classification import sized_data
    return int(sized_data(config).image_size or dataset_info(config.data.name).image_size)


def missing_teacher(data_name: str) -> str:
    """The message for a config without a teacher: which preset trains one, and how to name it."""
    from core.presets.distillation import TEACHER_PRESETS
    hint = TEACHER_PRESETS.get(data_name)
    if hint:
        return (f"task_options.teacher: no teacher chosen; train one first, e.g. python -m core train --preset {hint}, "
                "then add --set task_options.teacher=RUN_ID")
    return ("task_options.teacher: no teacher chosen; train an image classifier on the same data first, then add "
            "--set task_options.teacher=RUN_ID")


def check_teacher(config) -> None:
    """A ConfigError naming the field unless task_options.teacher is a finished image classification run with a
    best checkpoint, trained on the student's data at the student's image size."""
    from core.config import RunConfig
    from core.paths import run_dir
    from core.store import SETTLED_STATUSES, RunStore
    from core.tasks import task_spec
    from core.tasks.checkpoints import CHECKPOINT_FILES
    from core.tasks.distillation import options_of

    teacher_id = str(options_of(config)["teacher"]).strip()
    if not teacher_id:
        raise ConfigError(missing_teacher(config.data.name))
    try:
        run = RunStore().get_run(teacher_id)
    except LabError:
        raise ConfigError(f"task_options.teacher: no run with id '{teacher_id}'") from None
    if not is_classifier(run.task):
        raise ConfigError(f"task_options.teacher: run {teacher_id} is a {task_spec(run.task).title.lower()} run; the "
                          "teacher must be an image classifier")
    if run.status not in SETTLED_STATUSES:
        raise ConfigError(f"task_options.teacher: run {teacher_id} is {run.status}; pick a finished run")
    if not (run_dir(teacher_id) / CHECKPOINT_FILES["best"]).is_file():
        raise ConfigError(f"task_options.teacher: run {teacher_id} saved no best checkpoint; pick another run")
    theirs = run.config.get("data") or {}
    if not same_data(theirs, config.to_dict()["data"]):
        raise ConfigError(f"task_options.teacher: run {teacher_id} was trained on other data ('{theirs.get('name')}'"
                          f"{', ' + str(theirs['path']) if theirs.get('path') else ''}); the teacher must know the "
                          f"student's data set and classes")
    size = image_size(RunConfig.from_dict(run.config))
    if image_size(config) != size:
        raise ConfigError(f"data.image_size: the teacher (run {teacher_id}) takes {size}px images; set "
                          f"data.image_size to {size}")


def teacher_candidates(config, store=None) -> list[dict]:
    """The finished image classifiers (with a best checkpoint) a student of `config` may learn from, newest first:
    those check_teacher accepts, as {"run_id", "name", "model", "val_acc", "label"}."""
    from core.config import RunConfig
    from core.paths import run_dir
    from core.store import SETTLED_STATUSES, RunStore
    from core.tasks.checkpoints import CHECKPOINT_FILES

    store = store or RunStore()
    data, size = config.to_dict()["data"], None
    found = []
    for run in store.get_runs(statuses=SETTLED_STATUSES).values():
        if not same_data(run.config.get("data") or {}, data) or not is_classifier(run.task):
            continue
        if not (run_dir(run.id) / CHECKPOINT_FILES["best"]).is_file():
            continue
        size = image_size(config) if size is None else size
        if image_size(RunConfig.from_dict(run.config)) != size:
            continue
        value = run.summary.get("best_val_acc")
        acc = float(value) if isinstance(value, (int, float)) else None
        model = (run.config.get("model") or {}).get("name", "")
        label = f"{run.name} · {model}" + (f" · val_acc {acc:.3f}" if acc is not None else "") + f" · {run.id}"
        found.append({"run_id": run.id, "name": run.name, "model": model, "val_acc": acc, "label": label})
    return found


# ---- the student against its teacher and its baseline -------------------------------------------------------

COMPARED = ("data", "model", "optim", "seed")  # what the baseline shares with the student


def baseline_config(config):
    """The student's run as plain image classification (no teacher), named after the student's."""
    from core.tasks.distillation import as_classification
    return as_classification(config).replace(name=f"{config.display_name()}-no-teacher")


def find_baseline(config, store=None) -> str | None:
    """The newest finished classification run with the student's data, model, optimisation and seed, or None."""
    from core.store import SETTLED_STATUSES, RunStore
    store = store or RunStore()
    wanted = baseline_config(config).to_dict()
    for run in store.get_runs(statuses=SETTLED_STATUSES).values():
        if run.task == "classification" and all(run.config.get(key) == wanted[key] for key in COMPARED):
            return run.id
    return None


def comparison(run_id: str, store=None) -> dict:
    """The student's validation accuracy beside its teacher's and its baseline's (None where a run is missing):
    {"student", "teacher", "baseline"}: each {"run_id", "name", "val_acc" (best), "status"} or None;
    "curves": {"student" | "baseline": [(epoch, val_acc), ...]} per epoch; and "same_split": whether the teacher
    split the data as the student did (same seed and validation fraction), so that none of the student's validation
    images was among the teacher's training images (None without a teacher)."""
    from core.config import RunConfig
    from core.store import RunStore
    from core.tasks.distillation import options_of

    store = store or RunStore()
    run = store.get_run(run_id)
    config = RunConfig.from_dict(run.config)
    teacher_id = str(options_of(config)["teacher"]).strip()
    baseline_id = find_baseline(config, store)
    ids = {"student": run_id, "teacher": teacher_id or None, "baseline": baseline_id}
    runs = store.get_runs([i for i in ids.values() if i])
    out: dict = {}
    for role, rid in ids.items():
        other = runs.get(rid) if rid else None
        value = other.summary.get("best_val_acc") if other else None
        out[role] = None if other is None else {
            "run_id": rid, "name": other.name, "status": other.status,
            "val_acc": float(value) if isinstance(value, (int, float)) else None}
    curves = {}
    shown = [rid for role, rid in ids.items() if rid and role != "teacher" and out[role]]
    if shown:
        frame = store.metrics(shown, ["val_acc"])
        for role in ("student", "baseline"):
            if out[role]:
                rows = frame[frame.run_id == ids[role]]
                curves[role] = [(float(e), float(v)) for e, v in zip(rows.epoch, rows.value)]
    out["curves"] = curves
    teacher = runs.get(teacher_id) if teacher_id else None
    out["same_split"] = None if teacher is None else (
        teacher.config.get("seed") == run.config.get("seed")
        and (teacher.config.get("data") or {}).get("val_fraction") == run.config["data"].get("val_fraction"))
    return out
