"""Concept demos that teach with the reader's own trained run rather than a toy computed on the spot.

`seq2seq_attention` decodes a source the reader types with one of their finished sequence-to-sequence runs and
returns the attention map (which source characters each output character looked at); `text_attributions` is drawn
by the text-classification family's own page code. What a page needs from here: which family's finished runs a
demo works on (`runs_for`), the examples to pre-fill (`source_examples`) and the decoding (`attend`). torch is
imported only inside the functions that load a run.
"""

from __future__ import annotations

# demo id -> the family whose finished runs it works on
RUN_DEMOS: dict[str, str] = {"seq2seq_attention": "seq2seq", "text_attributions": "text_classification"}
MAX_DEMO_BEAM = 5  # the demo's beam slider; the Media page offers wider beams


def runs_for(demo_id: str, store=None, limit: int = 50) -> list:
    """The finished runs (core.store.Run) a run demo can use, newest first; [] for a demo that needs none."""
    from core.concepts import finished_runs
    family = RUN_DEMOS.get(demo_id)
    return finished_runs(store, limit, task=family) if family else []


def source_examples(run_id: str, which: str = "best") -> list[str]:
    """The validation sources a sequence-to-sequence run saved with its checkpoint (metadata["examples"]), so the
    demo can start from an input the run knows how to read."""
    from core.tasks.checkpoints import load_run_model
    run = load_run_model(run_id, which)
    run.require("seq2seq")
    return [str(pair[0]) for pair in run.metadata.get("examples") or [] if pair and str(pair[0]).strip()]


def attend(run_id: str, source: str, *, beam: int = 1, which: str = "best"):
    """`source` decoded by the run (core.tasks.seq2seq.translate.Translation): the output, its log-probability and
    the attention matrix (T_out, T_in). Raises a LabError (unknown run, no checkpoint yet, not a seq2seq run, an
    empty source or a bad beam width) with a message for the reader."""
    from core.errors import InputError
    from core.tasks.checkpoints import load_run_model
    from core.tasks.seq2seq.translate import translate
    if isinstance(beam, bool) or not isinstance(beam, int) or not 1 <= beam <= MAX_DEMO_BEAM:
        raise InputError(f"the beam width must be a whole number from 1 to {MAX_DEMO_BEAM}, got {beam!r}")
    run = load_run_model(run_id, which)
    run.require("seq2seq")
    return translate(run, source, beam=beam)


__all__ = ["MAX_DEMO_BEAM", "RUN_DEMOS", "attend", "runs_for", "source_examples"]
