"""A distillation run's checkpoint is an ordinary image classifier: Media, the confusion matrix, explanations,
export and compression read it with image classification's own entry points. Each entry point of SHARED is
classification's entry point of the same name (`SPEC.entry("evaluate")` here is classification's "evaluate"), so
this family follows wherever classification keeps them."""

from __future__ import annotations

# classification's entry points that take a trained run (its "pretrained" one loads torchvision models: not ours)
SHARED = ("predict", "classify_images", "classify_video", "explain", "evaluate", "run_data", "export")


def __getattr__(name: str):
    if name in SHARED:
        from core.tasks import task_spec
        return task_spec("classification").entry(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
