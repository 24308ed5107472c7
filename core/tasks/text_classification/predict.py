"""Classifying a text with a trained run, and which tokens made it choose a class.

    run = load_run_model(run_id, "best")
    prediction = classify_text(run, "Return the decimal's square root", top_k=3)
    prediction.top                       # [(class, probability), ...], most likely first
    why = explain_text(run, text)        # integrated gradients per token, for the predicted class
    why.pieces()                         # [(text piece, score or None), ...]: the whole text, for highlighting

Per-token attributions are integrated gradients (Sundararajan, Taly & Yan 2017, arXiv:1703.01365) taken at the
token embeddings through Captum's LayerIntegratedGradients, from the all-padding baseline (a zero embedding): a
token's score is its attribution summed over the embedding, and the scores add up to the class score's change
from the baseline (`delta` is what the numerical path integral misses). A text longer than the run's window is
cut, and the result says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from core.errors import InputError

MAX_CHARS = 200_000
IG_STEPS = 50


@dataclass
class TextPrediction:
    text: str  # the text as given (stripped)
    top: list[tuple[str, float]]  # (class, probability), most likely first
    tokens: int  # tokens the model read
    cut: int = 0  # tokens dropped from the end to fit the window
    unknown: int = 0  # tokens outside the run's vocabulary
    chars_cut: int = 0  # characters beyond MAX_CHARS, dropped before tokenising

    @property
    def notices(self) -> list[str]:
        notes = []
        if self.chars_cut:
            notes.append(f"the text was cut to its first {MAX_CHARS:,} characters; {self.chars_cut:,} dropped")
        if self.cut:
            notes.append(f"the text was cut to its first {self.tokens} tokens (this run's window); {self.cut} "
                         "dropped")
        if self.unknown:
            notes.append(f"{self.unknown} of {self.tokens} tokens were never seen in training and read as unknown")
        return notes


@dataclass
class TokenAttribution:
    text: str
    spans: list[tuple[int, int]]  # each token's (start, end) in the text
    scores: list[float]  # (T,) integrated gradients per token; positive = evidence for the class
    target: str  # the class explained
    probability: float  # its probability for this text
    delta: float  # completeness gap: class score change minus the sum of the scores
    cut: int = 0
    extra: dict = field(default_factory=dict)

    def pieces(self) -> list[tuple[str, float | None]]:
        """The whole text as (piece, score) in order: tokens with their scores, the gaps between them (spaces,
        and the part cut off) with None."""
        out, at = [], 0
        for (start, end), score in zip(self.spans, self.scores):
            start = max(start, at)  # normalisation (NFKC) can give two tokens one span: show its text once
            if start > at:
                out.append((self.text[at:start], None))
            if end > start:
                out.append((self.text[start:end], score))
            at = max(at, end)
        if at < len(self.text):
            out.append((self.text[at:], None))
        return out


def _vocab(run_model):
    from core.data.tokens import TokenVocab
    if getattr(run_model, "task", None) != "text_classification":
        raise InputError(f"run {getattr(run_model, 'run_id', '?')} is not a text classification run")
    return TokenVocab.from_dict(run_model.metadata["vocab"])


def _encode(run_model, text):
    if not isinstance(text, str):
        raise InputError(f"the text must be a string, got {type(text).__name__}")
    text = text.strip()
    chars_cut = max(0, len(text) - MAX_CHARS)
    text = text[:MAX_CHARS]
    if not text:
        raise InputError("type or upload some text to classify")
    tokens = _vocab(run_model).encode(text, max_len=int(run_model.metadata["max_len"]))
    if not tokens.ids:
        raise InputError("the text has no tokens this run can read (only spaces?)")
    device = next(run_model.model.parameters()).device
    return text, tokens, torch.tensor([tokens.ids], dtype=torch.long, device=device), chars_cut  # ids (1, T)


def classify_text(run_model, text: str, *, top_k: int = 5) -> TextPrediction:
    text, tokens, ids, chars_cut = _encode(run_model, text)
    model = run_model.model
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            probs = torch.softmax(model(ids).float(), 1)[0].cpu()  # (K,)
    finally:
        model.train(was_training)
    classes = run_model.metadata["classes"]
    values, indices = probs.topk(min(max(1, int(top_k)), len(classes)))
    return TextPrediction(text=text, top=[(classes[i], float(v)) for v, i in zip(values.tolist(), indices.tolist())],
                          tokens=len(tokens.ids), cut=tokens.cut, unknown=sum(1 for i in tokens.ids if i == 1),
                          chars_cut=chars_cut)


def explain_text(run_model, text: str, *, target: str | None = None, steps: int = IG_STEPS) -> TokenAttribution:
    """Integrated gradients per token for `target` (a class name; default: the predicted class)."""
    from captum.attr import LayerIntegratedGradients

    from core.tasks.classification.explain import private_copy

    text, tokens, ids, _ = _encode(run_model, text)
    classes = run_model.metadata["classes"]
    model = private_copy(run_model.model).eval()  # Captum's hooks on a copy: other sessions share the cached model
    with torch.no_grad():
        probs = torch.softmax(model(ids).float(), 1)[0]
    if target is None:
        index = int(probs.argmax())
    elif target in classes:
        index = classes.index(target)
    else:
        raise InputError(f"'{target}' is not a class of this run; its classes are: {', '.join(classes)}")
    explainer = LayerIntegratedGradients(model, model.embed)
    with torch.backends.cudnn.flags(enabled=False):  # cuDNN's RNN has no backward in eval mode
        attributions = explainer.attribute(ids, baselines=torch.zeros_like(ids), target=index, n_steps=int(steps),
                                           internal_batch_size=int(steps))
    scores = attributions.sum(-1)[0].detach().float().cpu()  # (T,)
    # The path ran with the text's own padding mask and zero embeddings at its start, so completeness is
    # measured against that same start (Captum's own delta would run the baseline ids, an empty text)
    with torch.no_grad():
        start = _logits_with_zero_embeddings(model, ids)[0, index]
        end = model(ids).float()[0, index]
    delta = float(end - start - scores.sum())
    return TokenAttribution(text=text, spans=list(tokens.spans), scores=scores.tolist(), target=classes[index],
                            probability=float(probs[index]), delta=abs(delta), cut=tokens.cut)


def _logits_with_zero_embeddings(model, ids):
    """The model's logits (1, K) for `ids` with every token embedding replaced by zeros: the path's start."""
    handle = model.embed.register_forward_hook(lambda module, inputs, output: torch.zeros_like(output))
    try:
        return model(ids).float()
    finally:
        handle.remove()
