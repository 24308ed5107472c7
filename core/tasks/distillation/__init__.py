"""Knowledge distillation: a student image classifier learns from a finished classifier run, the teacher.

The student is trained on the loss of Hinton, Vinyals & Dean (2015, "Distilling the Knowledge in a Neural
Network", arXiv:1503.02531), after the model compression of Buciluă, Caruana & Niculescu-Mizil (2006):

    loss = α · T² · KL(softmax(teacher / T) ‖ softmax(student / T)) + (1 − α) · CE(student, labels)

The temperature T softens both distributions, so the teacher's "dark knowledge" (which wrong classes it finds
plausible) reaches the student; T² keeps the soft part's gradients on the scale of the hard part's as T grows.
With α = 0 the run is plain image classification, step for step (tests/core/tasks/test_distillation.py).

Everything else is image classification's: the data, the student models (core.models with task
"classification"), the validation metrics, the checkpoint (a normal classifier), and so Media, the confusion
matrix, export and compression, through the entry points below (classifier.py).
"""

from __future__ import annotations

import dataclasses

import torch
from torch.nn import functional as F

from core.options import Option
from core.tasks.classification import ClassificationTask

OPTIONS = {
    "teacher": Option("", label="Teacher run",
                      help="A finished image classification run on the same data set: the student learns from "
                           "its softened predictions"),
    "temperature": Option(4.0, low=0.5, high=100.0, label="Temperature (T)",
                          help="Divides both models' logits before the softmax; higher spreads the teacher's "
                               "probability over more classes"),
    "alpha": Option(0.9, low=0.0, high=1.0, label="Soft-loss weight (α)",
                    help="Weight of the teacher's soft targets; the labels' cross-entropy gets 1 − α. "
                         "0 trains without the teacher"),
}


class DistillationTask(ClassificationTask):
    """Image classification whose training loss also matches a frozen teacher's softened predictions. Evaluation
    is classification's (val_loss, val_acc, val_top5 of the student alone)."""

    name = "distillation"

    def __init__(self, *, num_classes: int, teacher: torch.nn.Module, temperature: float, alpha: float,
                 label_smoothing: float = 0.0, to_teacher=None):
        super().__init__(num_classes=num_classes, label_smoothing=label_smoothing)
        self.teacher = teacher  # eval mode; never in the optimiser (it is no part of the student)
        self.temperature = float(temperature)
        self.alpha = float(alpha)
        self.to_teacher = to_teacher  # student-normalised inputs -> the teacher's normalisation; None: the same

    def teacher_logits(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, K) float32 logits of the frozen teacher on the student's (augmented) batch."""
        with torch.no_grad():  # not inference_mode: its tensors could not be saved for the loss's backward pass
            x = self.to_teacher(inputs) if self.to_teacher is not None else inputs
            return self.teacher(x).float()

    def training_step(self, model, batch):
        inputs, targets = batch
        logits = model(inputs)  # (B, K)
        hard = F.cross_entropy(logits, targets, label_smoothing=self.label_smoothing)
        soft = soft_loss(logits, self.teacher_logits(inputs), self.temperature)
        loss = self.alpha * soft + (1.0 - self.alpha) * hard
        with torch.no_grad():
            n = targets.numel()
            sums = {"loss": loss.detach().float() * n, "soft_loss": soft.detach().float() * n,
                    "hard_loss": hard.detach().float() * n,
                    "correct": (logits.argmax(dim=1) == targets).sum(),
                    "count": torch.tensor(n, device=targets.device)}
        return loss, sums

    def summarize(self, sums):
        count = max(float(sums["count"]), 1.0)
        return {**super().summarize(sums), "soft_loss": float(sums["soft_loss"]) / count,
                "hard_loss": float(sums["hard_loss"]) / count}


def soft_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T² · KL(softmax(teacher / T) ‖ softmax(student / T)), averaged over the batch; logits (B, K)."""
    t = temperature
    student = F.log_softmax(student_logits.float() / t, dim=1)
    teacher = F.log_softmax(teacher_logits.float() / t, dim=1)
    return F.kl_div(student, teacher, reduction="batchmean", log_target=True) * (t * t)


def renormaliser(student_pre: dict, teacher_pre: dict, device):
    """A function taking a batch normalised with the student's mean and std to the teacher's, or None when they
    are the same: x_teacher = (x · std_s + mean_s − mean_t) / std_t, per channel."""
    if student_pre["mean"] == teacher_pre["mean"] and student_pre["std"] == teacher_pre["std"]:
        return None

    def column(values):
        return torch.tensor([float(v) for v in values], dtype=torch.float32, device=device).view(1, -1, 1, 1)

    scale = column(student_pre["std"]) / column(teacher_pre["std"])  # (1, C, 1, 1)
    shift = (column(student_pre["mean"]) - column(teacher_pre["mean"])) / column(teacher_pre["std"])
    return lambda x: x * scale.to(x.dtype) + shift.to(x.dtype)


# ---- the task's spec: how a distillation run is set up --------------------------------------------

def as_classification(config):
    """The same run as plain image classification: the student trained without a teacher."""
    return dataclasses.replace(config, task="classification", task_options={}, name="")


def options_of(config) -> dict:
    from core.options import resolve
    return resolve(config.task_options, OPTIONS)


def setup(config, device, splits=None):
    """Classification's data, student and batches, then the teacher, loaded once from its best checkpoint."""
    from core.errors import ConfigError
    from core.tasks import Setup
    from core.tasks.classification import setup as classification_setup
    from core.tasks.checkpoints import load_run_model

    # first: the student's initial weights draw from the seed, as in the plain classification run
    student = classification_setup(as_classification(config), device, splits=splits)
    options = options_of(config)
    # Loading the teacher builds a model, which draws random numbers: put the generator back, so the run's
    # dropout masks (and so everything) match the student's plain classification run.
    place = torch.device(device)
    cuda = [torch.cuda.current_device() if place.index is None else place.index] if place.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        teacher = load_run_model(options["teacher"], "best", device=device)
    teacher_pre, student_pre = teacher.metadata["preprocessing"], student.metadata["preprocessing"]
    if [str(c) for c in teacher.metadata["classes"]] != [str(c) for c in student.metadata["classes"]]:
        raise ConfigError(f"task_options.teacher: run {options['teacher']} was trained on the classes "
                          f"{', '.join(map(str, teacher.metadata['classes'][:10]))}, the student's data has "
                          f"{', '.join(map(str, student.metadata['classes'][:10]))}; pick a teacher of the same data")
    if (int(teacher_pre["channels"]), int(teacher_pre["image_size"])) != (
            int(student_pre["channels"]), int(student_pre["image_size"])):
        raise ConfigError(f"data.image_size: the teacher (run {options['teacher']}) takes {teacher_pre['channels']}"
                          f"-channel {teacher_pre['image_size']}px images, the student's data gives "
                          f"{student_pre['channels']}-channel {student_pre['image_size']}px; set data.image_size to "
                          f"{teacher_pre['image_size']}")
    task = DistillationTask(num_classes=len(student.metadata["classes"]), teacher=teacher.model,
                            temperature=options["temperature"], alpha=options["alpha"],
                            label_smoothing=config.optim.label_smoothing,
                            to_teacher=renormaliser(student_pre, teacher_pre, device))
    metadata = {**student.metadata, "teacher": {"run_id": options["teacher"], "model": teacher.config.model.name,
                                                "epoch": teacher.epoch, "best_value": teacher.best_value}}
    return Setup(task=task, model=student.model, train_batches=student.train_batches,
                 val_batches=student.val_batches, metadata=metadata)


def build_model(config, metadata):
    from core.tasks.classification import build_model as classification_model
    return classification_model(config, metadata)


def validate(config) -> None:
    """The student's fields as image classification checks them, the options, then the teacher (runs.py)."""
    from core.options import validate_options
    from core.tasks.classification import validate as classification_validate
    from core.tasks.distillation.runs import check_teacher

    validate_options("task_options", config.task_options, OPTIONS)
    classification_validate(as_classification(config))
    check_teacher(config)


def _spec():
    from core.tasks import TaskSpec
    from core.tasks.classification import check_ready, example_input, sized_data
    from core.tasks.distillation.classifier import SHARED
    return TaskSpec(name="distillation", title="Knowledge distillation",
                    description="Train a small image classifier on a finished classifier's softened predictions "
                                "(Hinton et al., 2015) as well as on the labels",
                    data_kind="images", setup=setup, build_model=build_model, validate=validate,
                    watches=(DistillationTask.best_metric, DistillationTask.best_mode), options=OPTIONS,
                    entry_points={**{name: f"classifier:{name}" for name in SHARED}, "compare": "runs:comparison"},
                    example_input=example_input, check_ready=check_ready,
                    sized_data=lambda config: sized_data(config))


SPEC = _spec()
