"""Captioning at inference time: greedy decoding, beam search, and corpus BLEU (Papineni et al. 2002).

    captioner = load_captioner(run_id, "best")
    captioner.greedy(image)              # {"caption": "a red circle left of a blue square", "log_prob": -0.4, ...}
    captioner.beam(image, width=5)       # the same, best first, up to `width` of them

BLEU is written here from the paper: modified n-gram precision (each n-gram counted at most as many
times as it appears in the single reference that has it most), summed over the whole corpus, the
geometric mean of the precisions for n = 1..N, times a brevity penalty for hypotheses shorter than
their closest-length references.
"""

from __future__ import annotations

import math
from collections import Counter

import torch

# ---- BLEU -------------------------------------------------------------------------------------------


def ngrams(words, n: int) -> Counter:
    return Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def modified_precision(hypothesis, references, n: int) -> tuple[int, int]:
    """(clipped matches, hypothesis n-grams) for one sentence: each n-gram's count is clipped to the
    largest number of times any one reference holds it."""
    counts = ngrams(hypothesis, n)
    most: Counter = Counter()
    for reference in references:
        for gram, count in ngrams(reference, n).items():
            most[gram] = max(most[gram], count)
    clipped = sum(min(count, most[gram]) for gram, count in counts.items())
    return clipped, sum(counts.values())


def closest_length(hypothesis, references) -> int:
    """The reference length nearest the hypothesis length (the shorter one on a tie)."""
    c = len(hypothesis)
    return min((len(r) for r in references), key=lambda r: (abs(r - c), r))


def brevity_penalty(candidate_length: int, reference_length: int) -> float:
    if candidate_length == 0:
        return 0.0
    if candidate_length > reference_length:
        return 1.0
    return math.exp(1.0 - reference_length / candidate_length)


def corpus_bleu(hypotheses, references, max_n: int = 4) -> dict[str, float]:
    """{"bleu1": ..., "bleuN": ...} for tokenised hypotheses (list of word lists) and, per hypothesis,
    a list of tokenised references. BLEU-n uses uniform weights 1/n over precisions 1..n; it is 0 when
    any of them has no match (no smoothing, as in the paper)."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} reference lists")
    matches, totals = [0] * max_n, [0] * max_n
    c = r = 0
    for hypothesis, refs in zip(hypotheses, references):
        if not refs:
            raise ValueError("every hypothesis needs at least one reference")
        c += len(hypothesis)
        r += closest_length(hypothesis, refs)
        for n in range(1, max_n + 1):
            m, t = modified_precision(hypothesis, refs, n)
            matches[n - 1] += m
            totals[n - 1] += t
    bp = brevity_penalty(c, r)
    scores = {}
    for n in range(1, max_n + 1):
        precisions = [matches[k] / totals[k] if totals[k] else 0.0 for k in range(n)]
        if min(precisions) == 0.0:
            scores[f"bleu{n}"] = 0.0
        else:
            scores[f"bleu{n}"] = bp * math.exp(sum(math.log(p) for p in precisions) / n)
    return scores


# ---- decoding ---------------------------------------------------------------------------------------

@torch.inference_mode()
def greedy_decode(model, images: torch.Tensor, max_length: int, start: int = 1, end: int = 2):
    """Normalised images (B, 3, S, S) -> (token lists without <start>/<end>, summed log-probabilities (B,)).

    At each step every caption takes its most likely next word; finished captions stop counting. After
    `max_length` words <end> is forced (and its log-probability counted), as beam search does.
    """
    batch = images.shape[0]
    state = model.start(images)
    previous = torch.full((batch,), start, dtype=torch.long, device=images.device)
    done = torch.zeros(batch, dtype=torch.bool, device=images.device)
    total = torch.zeros(batch, device=images.device)
    chosen = []
    for step in range(max_length + 1):  # up to max_length words, then <end>
        log_probs, state = model.step(previous, state)  # (B, V)
        if step == max_length:
            best, previous = log_probs[:, end], torch.full_like(previous, end)
        else:
            best, previous = log_probs.max(dim=-1)  # (B,), (B,)
        total = total + torch.where(done, torch.zeros_like(best), best)
        chosen.append(torch.where(done, torch.full_like(previous, end), previous))
        done = done | (previous == end)
        if bool(done.all()):
            break
    words = torch.stack(chosen, dim=1).tolist()  # (B, steps)
    return [row[:row.index(end)] if end in row else row for row in words], total.cpu()


@torch.inference_mode()
def beam_search(model, image: torch.Tensor, width: int, max_length: int, start: int = 1, end: int = 2,
                alpha: float = 0.7) -> list[dict]:
    """One normalised image (1, 3, S, S) -> up to `width` captions, best score first.

    Each entry is {"tokens": [...] (without <start>/<end>), "log_prob": summed log-probability,
    "score": log_prob / (words + 1) ** alpha}. Length normalisation (alpha > 0) keeps the search
    from preferring short captions only because every extra word multiplies in a probability below
    one; alpha = 0 ranks by raw log-probability. A beam that emits <end> is set aside and the beam
    narrows by one, so width 1 is exactly greedy decoding.
    """
    if width < 1:
        raise ValueError(f"beam width must be at least 1, got {width}")
    h, c = model.start(image)  # (L, 1, H) each
    beams = [[]]  # token lists of the live hypotheses
    scores = torch.zeros(1, device=image.device)  # (K,) summed log-probabilities
    previous = torch.tensor([start], device=image.device)
    finished = []
    for step in range(max_length + 1):
        log_probs, (h, c) = model.step(previous, (h, c))  # (K, V)
        if step == max_length:  # the words are used up: only <end> may follow
            forced = torch.full_like(log_probs, -math.inf)
            forced[:, end] = log_probs[:, end]
            log_probs = forced
        room = width - len(finished)
        total = (scores[:, None] + log_probs).flatten()  # (K * V,)
        top_scores, top_index = total.topk(min(room, total.numel()))
        vocab = log_probs.shape[1]
        keep, kept_scores, next_beams = [], [], []
        for score, index in zip(top_scores.tolist(), top_index.tolist()):
            beam, word = divmod(index, vocab)
            if score == -math.inf:
                continue
            if word == end:
                finished.append({"tokens": beams[beam], "log_prob": score})
            else:
                keep.append(beam)
                kept_scores.append(score)
                next_beams.append(beams[beam] + [word])
        if not next_beams:
            break
        pick = torch.tensor(keep, device=image.device)
        h, c = h.index_select(1, pick), c.index_select(1, pick)
        scores = torch.tensor(kept_scores, device=image.device)
        previous = torch.tensor([b[-1] for b in next_beams], device=image.device)
        beams = next_beams
    for entry in finished:
        entry["score"] = entry["log_prob"] / (len(entry["tokens"]) + 1) ** alpha
    return sorted(finished, key=lambda e: e["score"], reverse=True)


# ---- a trained run ----------------------------------------------------------------------------------

class Captioner:
    """A captioning run's model with its vocabulary and preprocessing, for PIL images."""

    def __init__(self, model, metadata: dict, device="cpu"):
        from core.data.scenes import Vocabulary
        self.model, self.device = model.eval(), torch.device(device)
        self.vocab = Vocabulary(metadata["vocab"])
        pre = metadata["preprocessing"]
        self.image_size, self.max_length = int(pre["image_size"]), int(metadata["max_length"])
        self.mean = torch.tensor(pre["mean"], device=self.device).view(1, -1, 1, 1)
        self.std = torch.tensor(pre["std"], device=self.device).view(1, -1, 1, 1)

    def prepare(self, images) -> torch.Tensor:
        """PIL images (any size; RGB) -> (B, 3, S, S) normalised, squashed like the training folders."""
        import numpy as np
        from PIL import Image
        arrays = []
        for image in images:
            rgb = image.convert("RGB")
            if rgb.size != (self.image_size, self.image_size):
                rgb = rgb.resize((self.image_size, self.image_size), Image.Resampling.BILINEAR)
            arrays.append(np.asarray(rgb, dtype=np.uint8))
        x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).to(self.device, torch.float32)
        return (x / 255.0 - self.mean) / self.std

    def text(self, tokens) -> str:
        return " ".join(self.vocab.decode(tokens))

    def greedy(self, image) -> dict:
        tokens, log_probs = greedy_decode(self.model, self.prepare([image]), self.max_length,
                                          self.vocab.START, self.vocab.END)
        return {"caption": self.text(tokens[0]), "tokens": tokens[0], "log_prob": float(log_probs[0])}

    def beam(self, image, width: int = 3, alpha: float = 0.7) -> list[dict]:
        results = beam_search(self.model, self.prepare([image]), width, self.max_length, self.vocab.START,
                              self.vocab.END, alpha=alpha)
        return [{"caption": self.text(r["tokens"]), **r} for r in results]


def load_captioner(run_id: str, which: str = "best", device="cpu") -> Captioner:
    """The captioner of a run (core.inference.load_run_model: weights_only, cached until the file changes)."""
    from core.errors import CheckpointError
    from core.inference.runs import load_run_model
    run_model = load_run_model(run_id, which, device=device)
    if run_model.task != "captioning":
        raise CheckpointError(f"run {run_id} is a '{run_model.task}' run, not an image captioning run")
    return Captioner(run_model.model, run_model.metadata, device=device)


def scene(seed: int, image_size: int = 64):
    """A freshly generated scene (PIL image) and its true captions: the Media page's "try a scene"."""
    from PIL import Image

    from core.data.scenes import describe, generate_scenes
    images, objects = generate_scenes(1, seed, image_size)
    return Image.fromarray(images[0].permute(1, 2, 0).numpy()), describe(objects[0])
