"""What you do with a trained run: attack it, explain it, fine-tune from it, compress it, distil it, export it.
Each tool reads a finished run through the one checkpoint loader (core.tasks.checkpoints) and stores what it makes
under the run's own folder, so it shows up again when the run is reopened. Which tools apply to a run is the
family's to declare, through its entry points (`tools_for`)."""

from __future__ import annotations

# tool -> what it needs of the family: entry points (core.tasks.TaskSpec.entry_points), where "classify_images"
# marks a family whose model classifies pictures (image classification, distillation), which attacks and
# explanations take; "finetune" is TaskSpec.finetune: a new run may start from this one's weights
# (core.tasks.finetune)
NEEDS = {"layers": ("explain", "classify_images"), "attack": ("run_data", "classify_images"),
         "finetune": ("finetune",), "compress": ("run_data",), "export": ("export",)}


def tools_for(task: str) -> list[str]:
    """The tools of this module that apply to runs of the family `task`, in the order the run page shows them."""
    from core.tasks import task_spec
    spec = task_spec(task)
    offers = set(spec.entry_points) | ({"finetune"} if spec.finetune else set())
    return [tool for tool, needs in NEEDS.items() if all(need in offers for need in needs)]
