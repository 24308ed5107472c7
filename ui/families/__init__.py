"""Per-task pieces of the pages. Every task has a module here, `ui/families/<task>.py` (the task's name
from core.tasks), with any of these functions:

    form(has_cuda)         the family's whole Train form, returning the RunConfig it describes; without
                           it the Train page draws a generic form from the family's option schemas, with:
    form_extras()          extra widgets in the Train form's Data box (e.g. upload a .txt file and put
                           its saved path into st.session_state[ui.forms.PREFIX + "data.path"])
    preview(config)        the right-hand column of the Train form: what the data looks like, model size
    live(run, folder)      inside the live view's refreshing fragment, under the charts: latest samples
                           (core.engine.samples.latest_samples(folder)), e.g. generated text or a grid
    results(run)           once a run has completed, under the live view (e.g. a latent-space scatter)
    media(source)          the Media page body for a run of this task; source = {"run_id", "which", ...}
    runs_extra(run_ids)    a section on the Runs page for the selected runs of this task

Pages call them through `hook(task, name)`, which returns None when the module or function is absent,
so a family can grow its pages one function at a time. Core logic (generation, beam search, playing
an episode) lives in the family's package under core/tasks, never here.
"""

from __future__ import annotations

import importlib
import importlib.util


def hook(task: str, name: str):
    """The function `name` of ui/families/<task>.py, or None."""
    if not task:
        return None
    module_name = f"ui.families.{task}"
    if importlib.util.find_spec(module_name) is None:
        return None
    return getattr(importlib.import_module(module_name), name, None)
