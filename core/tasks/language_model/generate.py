"""Text from character language models: streamed generation and attention maps.

    run = load_run_model(run_id, "best")
    for chunk in generate(run, "ROMEO:", length=300, temperature=0.8, top_k=20, seed=1):
        print(chunk, end="")
    attention_map(run, "To be, or not to be")   # GPT runs: weights of every layer and head

Characters of a prompt that the run's text never contained have no id: they are dropped with a warning
(`check_prompt` tells a page which ones, so it can say so). Sampling draws from a CPU generator seeded
with `seed`, so the same run, prompt and settings give the same text on any device.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Iterator

import torch

from core.errors import InputError
from core.models.char_lm import stream_characters

MAX_LENGTH = 10_000
MAX_TEMPERATURE = 5.0


@dataclass
class PromptCheck:
    text: str  # the prompt as the model will read it (unknown characters removed)
    dropped: list[str]  # characters not in the vocabulary, in order of first appearance

    @property
    def message(self) -> str:
        shown = ", ".join(repr(c) for c in self.dropped[:12]) + (" …" if len(self.dropped) > 12 else "")
        return f"dropped {len(self.dropped)} character(s) the model never saw in training: {shown}"


@dataclass
class AttentionMap:
    chars: list[str]  # the prompt characters the map covers (the last `context` of the prompt)
    weights: torch.Tensor  # (layers, heads, T, T) on the CPU; row t: how much position t attends to each s <= t

    @property
    def layers(self) -> int:
        return self.weights.shape[0]

    @property
    def heads(self) -> int:
        return self.weights.shape[1]


def vocabulary(run_model):
    from core.data.text import Vocabulary
    if getattr(run_model, "task", None) != "language_model" or "vocab" not in run_model.metadata:
        raise InputError(f"run {getattr(run_model, 'run_id', '?')} is not a character language model")
    return Vocabulary(run_model.metadata["vocab"])


def check_prompt(run_model, prompt: str) -> PromptCheck:
    vocab = vocabulary(run_model)
    if not isinstance(prompt, str):
        raise InputError(f"the prompt must be text, got {type(prompt).__name__}")
    prompt = prompt.replace("\r\n", "\n")
    dropped = vocab.unknown(prompt)
    return PromptCheck("".join(c for c in prompt if c in vocab.index), dropped)


def generate(run_model, prompt: str = "", *, length: int = 200, temperature: float = 0.8, top_k: int | None = None,
             seed: int = 0) -> Iterator[str]:
    """A generator of the `length` characters that follow `prompt` (the prompt itself is not repeated).

    temperature 0 (or top_k 1) always picks the most likely character; top_k keeps only the k most
    likely characters at each step (None or 0: all). Arguments are checked before anything is generated.
    """
    if isinstance(length, bool) or not isinstance(length, int) or not 1 <= length <= MAX_LENGTH:
        raise InputError(f"length must be a whole number from 1 to {MAX_LENGTH:,}, got {length!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or \
            not 0.0 <= temperature <= MAX_TEMPERATURE:
        raise InputError(f"temperature must be a number from 0 to {MAX_TEMPERATURE:g}, got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0):
        raise InputError(f"top_k must be a whole number >= 0 (0: no limit), got {top_k!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InputError(f"seed must be a whole number, got {seed!r}")
    check = check_prompt(run_model, prompt)
    if check.dropped:
        warnings.warn(check.message, UserWarning, stacklevel=2)
    text = check.text or run_model.metadata.get("sample_prompt") or "\n"
    vocab = vocabulary(run_model)
    if text[0] not in vocab.index:  # an empty prompt on a vocabulary without new lines
        text = vocab.chars[0]
    return stream_characters(run_model.model, vocab, text, length=length, temperature=float(temperature),
                             top_k=top_k or None, seed=seed)


def attention_map(run_model, prompt: str) -> AttentionMap:
    """Attention weights of a GPT run over (the last `context` characters of) a prompt."""
    model = run_model.model
    if not getattr(model, "has_attention", False):
        raise InputError(f"attention maps need a transformer (char_gpt); this run's model is "
                         f"{run_model.config.model.name}, which has no attention")
    check = check_prompt(run_model, prompt)
    if not check.text:
        raise InputError("type a prompt to see where the model attends"
                         + (f" ({check.message})" if check.dropped else ""))
    chars = list(check.text[-model.context:])
    vocab = vocabulary(run_model)
    device = next(model.parameters()).device
    with torch.inference_mode():
        _, maps = model(vocab.encode("".join(chars))[None].to(device), return_attention=True)
    weights = torch.stack([m[0] for m in maps]).float().cpu()  # (layers, heads, T, T)
    return AttentionMap(chars=chars, weights=weights)
