"""Decoding a trained sequence-to-sequence run: greedy or beam search, with the attention matrix.

    run = load_run_model(run_id, "best")
    result = translate(run, "1234", beam=4)
    result.text, result.score, result.attention   # (T_out, T_in): where each output character looked
    result.alternatives                           # [(text, log-probability), ...], best first

A source longer than the longest the run trained on is cut (`result.notices` says so); characters the
run never saw are read as unknown and reported in `result.unknown`, not refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from core.errors import InputError

MAX_BEAM = 32
PAD_ID, BOS_ID, EOS_ID = 0, 1, 2


@dataclass
class Translation:
    source: str  # the source as the model read it (cut to the longest source it trained on)
    text: str
    score: float  # log-probability of the output (eos included)
    attention: torch.Tensor  # (T_out, T_in) on the CPU: each row sums to 1 over the source characters
    output_chars: list[str]  # the rows of `attention`: the output's characters, then "<eos>" if it ended
    alternatives: list[tuple[str, float]] = field(default_factory=list)  # the beam's hypotheses, best first
    unknown: list[str] = field(default_factory=list)  # source characters outside the run's vocabulary
    cut: int = 0  # characters dropped from the end of a too-long source

    @property
    def notices(self) -> list[str]:
        notes = []
        if self.cut:
            notes.append(f"the input was cut to its first {len(self.source)} characters (the longest source this "
                         f"run trained on); {self.cut} dropped")
        if self.unknown:
            notes.append("characters this run never saw, read as unknown: "
                         + ", ".join(repr(c) for c in self.unknown))
        return notes


def vocabularies(run_model):
    from core.data.pairs import CharVocab
    if getattr(run_model, "task", None) != "seq2seq" or "src_vocab" not in run_model.metadata:
        raise InputError(f"run {getattr(run_model, 'run_id', '?')} is not a sequence-to-sequence run")
    return CharVocab(run_model.metadata["src_vocab"]), CharVocab(run_model.metadata["tgt_vocab"])


def beam_search(model, src: torch.Tensor, *, width: int, max_len: int):
    """Beam search over one source (1, S): [(ids without eos, score, attention (T, S), ended)], best first.

    Scores are summed log-probabilities (no length normalisation), so width 1 is greedy decoding. A search
    that runs out of `max_len` steps lists its live hypotheses too (ended False). The model's state and
    context are opaque tensors batched along dim 0 (a GRU's hidden state (B, H); a Transformer's decoder
    inputs so far (B, layers, t, D)): hypotheses are stacked with torch.cat and picked with [i:i + 1]."""
    state, context, memory = model.start(src)
    beams = [([], 0.0, state, context, [])]  # ids, score, state, context, attention rows
    finished = []
    for _ in range(max_len):
        if not beams:
            break
        tokens = torch.tensor([b[0][-1] if b[0] else BOS_ID for b in beams], device=src.device)
        states = torch.cat([b[2] for b in beams])
        contexts = torch.cat([b[3] for b in beams])
        n = len(beams)
        mem = tuple(m.expand(n, *m.shape[1:]) for m in memory)
        logits, new_state, new_context, weights = model.step(tokens, states, contexts, mem)
        logp = torch.log_softmax(logits.float(), -1)
        candidates = []
        for i, (ids, score, _, _, rows) in enumerate(beams):
            top = torch.topk(logp[i], min(width, logp.size(-1)))
            for value, token in zip(top.values.tolist(), top.indices.tolist()):
                candidates.append((score + value, i, token))
        candidates.sort(key=lambda c: -c[0])
        previous, beams = beams, []
        for score, i, token in candidates[:width]:
            ids, rows = previous[i][0], previous[i][4] + [weights[i]]
            if token == EOS_ID:
                finished.append((ids, score, rows, True))
            else:
                beams.append((ids + [token], score, new_state[i:i + 1], new_context[i:i + 1], rows))
        finished.sort(key=lambda f: -f[1])
        # scores only fall as a hypothesis grows: once `width` have ended and no live one beats the last of
        # them, nothing can change the ranking
        if len(finished) >= width and (not beams or beams[0][1] <= finished[width - 1][1]):
            break
    if len(finished) < width:  # out of steps: the live hypotheses, cut, fill the list
        finished += [(ids, score, rows, False) for ids, score, _, _, rows in beams]
    finished.sort(key=lambda f: -f[1])
    return [(ids, score, torch.stack(rows).float().cpu(), ended) for ids, score, rows, ended in finished[:width]]


@torch.inference_mode()
def translate(run_model, source: str, *, beam: int = 1, max_len: int | None = None) -> Translation:
    """Decode `source` with a beam of width `beam` (1: greedy)."""
    if not isinstance(source, str):
        raise InputError(f"the source must be text, got {type(source).__name__}")
    if isinstance(beam, bool) or not isinstance(beam, int) or not 1 <= beam <= MAX_BEAM:
        raise InputError(f"the beam width must be a whole number from 1 to {MAX_BEAM}, got {beam!r}")
    src_vocab, tgt_vocab = vocabularies(run_model)
    source = source.strip()
    if not source:
        raise InputError("type a source sequence to translate")
    longest = int(run_model.metadata.get("max_src", len(source)))
    cut = max(0, len(source) - longest)
    source = source[:longest]
    unknown = src_vocab.unknown(source)
    model = run_model.model
    device = next(model.parameters()).device
    src = torch.tensor([src_vocab.encode(source)], dtype=torch.long, device=device)
    max_len = max_len or int(run_model.metadata.get("max_tgt", 100)) + 1
    was_training = model.training
    model.eval()
    try:
        hypotheses = beam_search(model, src, width=beam, max_len=max_len)
    finally:
        model.train(was_training)
    ids, score, attention, ended = hypotheses[0]
    chars = [tgt_vocab.tokens[i] for i in ids] + (["<eos>"] if ended else [])
    return Translation(source=source, text=tgt_vocab.decode(ids), score=score, attention=attention,
                       output_chars=chars, alternatives=[(tgt_vocab.decode(h[0]), h[1]) for h in hypotheses],
                       unknown=unknown, cut=cut)
