"""Exporting a character language model (core.tasks.export_spec.ExportSpec): a window of character ids in, the
next-character logits at every position out, checked on the run's own validation windows."""

from __future__ import annotations

from core.errors import DataError
from core.tasks.export_spec import ExportSpec


def export_spec(run_model) -> ExportSpec:
    vocab = [str(c) for c in run_model.metadata["vocab"]]
    context = int(run_model.metadata.get("context") or run_model.config.task_options.get("context", 128))
    interface = {
        "vocabulary": vocab,
        "context": context,
        "input": {"name": "tokens", "dtype": "int64", "shape": ["N", "T"],
                  "meaning": f"character ids, indexes into `vocabulary`; T at most {context}"},
        "output": {"name": "logits", "shape": ["N", "T", len(vocab)],
                   "meaning": "scores for the next character at every position; softmax gives probabilities"},
    }
    return ExportSpec(describe="A character language model", part=run_model.model,
                      inputs=lambda n: _windows(run_model, n, len(vocab)), input_name="tokens",
                      output_name="logits", interface=interface, varying_axes=(1,))


def _windows(run_model, n: int, vocab_size: int):
    """(ids (n, T) int64, "validation" or "random", note): the run's first validation windows, or seeded random
    ids when its text cannot be read."""
    import torch

    from core.tasks.language_model.run_data import run_data
    try:
        return run_data(run_model).example(n), "validation", ""
    except DataError as exc:
        context = int(run_model.metadata.get("context") or 32)
        generator = torch.Generator().manual_seed(0)
        ids = torch.randint(0, vocab_size, (n, context), generator=generator)
        return ids, "random", f"checked on random characters: the run's text cannot be read ({exc})"
