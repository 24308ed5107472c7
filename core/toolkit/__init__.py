"""What you do with a trained run: attack it, explain it, fine-tune from it, compress it, distil it, export it.
Each tool reads a finished run through the one checkpoint loader (core.tasks.checkpoints) and stores what it makes
under the run's own folder, so it shows up again when the run is reopened. Which tools apply to a run is the
family's to declare, through its entry points (`tools_for`)."""

from __future__ import annotations

# tool -> the family entry point it needs (core.tasks.TaskSpec.entry_points)
NEEDS = {"export": "export", "compress": "run_data"}


def tools_for(task: str) -> list[str]:
    """The tools of this module that apply to runs of the family `task`, in the order the run page shows them."""
    from core.tasks import task_spec
    entry_points = task_spec(task).entry_points
    return [tool for tool, entry in NEEDS.items() if entry in entry_points]
