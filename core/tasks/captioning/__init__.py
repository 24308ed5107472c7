"""Image captioning: per-token cross-entropy with teacher forcing; BLEU-1..4 of greedy captions.

A batch holds B images and all of their captions (core.data.scenes.CaptionBatches): the encoder runs
once per image and the decoder once per caption, every caption a training sequence of its own as in
NeuralTalk. The loss ignores padding and is averaged per token (train_loss, val_loss); throughput
(samples_per_s) counts images. Validation also decodes one greedy caption per distinct image and
scores the corpus against all of that image's captions (val_bleu1..val_bleu4,
corpus_bleu below, computed by sacrebleu).

The checkpoint watches val_bleu4 (max). BLEU-4 is corpus-level here (n-gram matches summed over all
validation images before the geometric mean), so it is 0 only while no greedy caption shares a
four-word run with a reference: on the scenes preset it is above 0.2 after the first epoch. A
sentence-level average would be the sparse one. BLEU-4 rewards word order ("circle left of a")
where BLEU-1 only rewards naming the right colours and shapes. On a tiny set where it stays 0, the
best checkpoint is simply the first epoch's; last.pt is always there too.
"""

from __future__ import annotations

import base64
import io
from contextlib import nullcontext

import torch
from torch.nn import functional as F

from core.options import Option

TASK_OPTIONS = {
    "min_count": Option(1, "Words seen fewer times than this in the training captions become <unk>", low=1,
                        high=1000, label="Min word count"),
    "max_length": Option(20, "Longest caption in words: longer ones are cut in training, and decoding stops there",
                         low=3, high=100, label="Max caption words"),
    "sample_every": Option(50, "Steps between sample captions in the live view (0: never)", low=0, high=1_000_000),
}
SAMPLE_IMAGES = 8  # validation images whose captions the live view follows


class CaptioningTask:
    name = "captioning"
    best_metric = "val_bleu4"
    best_mode = "max"

    def __init__(self, *, vocab, max_length: int, sample_every: int = 0, sample_images=None, sample_pngs=(),
                 sample_references=()):
        self.vocab, self.max_length, self.sample_every = vocab, max_length, sample_every
        self.sample_images = sample_images  # (k, 3, S, S) normalised, on the device
        self.sample_pngs, self.sample_references = list(sample_pngs), list(sample_references)

    def _loss(self, model, images, tokens, owner):
        """Mean cross-entropy per real token, and (summed loss, tokens, correct) for the log."""
        inputs, targets = tokens[:, :-1], tokens[:, 1:]  # (P, T-1): <start> w1 .. -> w1 .. <end>
        logits = model(images, inputs, owner).float()  # (P, T-1, V)
        flat_targets = targets.reshape(-1)
        loss_sum = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), flat_targets, ignore_index=0,
                                   reduction="sum")
        real = flat_targets != 0
        count = real.sum()
        correct = ((logits.argmax(dim=-1).reshape(-1) == flat_targets) & real).sum()
        return loss_sum / count.clamp_min(1), loss_sum.detach(), count, correct

    def training_step(self, model, batch):
        images, tokens, owner = batch
        loss, loss_sum, count, correct = self._loss(model, images, tokens, owner)
        sums = {"loss": loss_sum, "tokens": count, "correct": correct,
                "count": torch.tensor(images.shape[0], device=tokens.device)}  # images in the batch
        return loss, sums

    def summarize(self, sums):
        tokens = max(float(sums["tokens"]), 1.0)
        return {"loss": float(sums["loss"]) / tokens, "acc": float(sums["correct"]) / tokens}

    def captions(self, model, images) -> list[list[str]]:
        from core.models.captioning import greedy_decode
        tokens, _ = greedy_decode(model, images, self.max_length, self.vocab.START, self.vocab.END)
        return [self.vocab.decode(t) for t in tokens]

    @torch.inference_mode()
    def evaluate(self, model, batches, autocast=None):
        was_training = model.training
        model.eval()
        loss_sum, tokens, correct = 0.0, 0, 0
        hypotheses = []
        with autocast() if autocast else nullcontext():
            for images, caption_tokens, owner in batches.epoch(0):  # in order: hypotheses follow the references
                _, batch_loss, count, right = self._loss(model, images, caption_tokens, owner)
                loss_sum, tokens, correct = loss_sum + batch_loss, tokens + count, correct + right
                hypotheses += self.captions(model, images)
        model.train(was_training)
        if not hypotheses:
            return {}
        tokens = max(float(tokens), 1.0)
        metrics = {"val_loss": float(loss_sum) / tokens, "val_acc": float(correct) / tokens}
        bleu = corpus_bleu(hypotheses, batches.references)
        metrics.update({f"val_{k}": v for k, v in bleu.items()})
        return metrics

    def samples(self, model) -> dict:
        """Greedy captions of a fixed set of validation images, for the live view (JSON)."""
        if self.sample_images is None or not len(self.sample_images):
            return {}
        captions = self.captions(model, self.sample_images)
        return {"captions": {"items": [{"image": png, "caption": " ".join(words), "references": refs}
                                       for png, words, refs in zip(self.sample_pngs, captions,
                                                                   self.sample_references)]}}


def png_base64(image) -> str:
    """(3, S, S) uint8 tensor -> a PNG, base64-encoded (JSON-able)."""
    from PIL import Image
    buffer = io.BytesIO()
    Image.fromarray(image.permute(1, 2, 0).cpu().numpy()).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


# ---- BLEU ---------------------------------------------------------------------------------------

def corpus_bleu(hypotheses, references, max_n: int = 4) -> dict[str, float]:
    """{"bleu1": ..., "bleuN": ...} in [0, 1] for tokenised hypotheses (word lists) and, per hypothesis, a
    list of tokenised references (any number, at least one), computed by sacrebleu.

    As in Papineni et al. (2002): modified n-gram precisions pooled over the corpus, BLEU-n their geometric
    mean over 1..n with uniform weights, times the brevity penalty against each hypothesis' closest
    reference length; 0 when some precision has no match (no smoothing).
    """
    from sacrebleu.metrics import BLEU

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} reference lists")
    if any(not refs for refs in references):
        raise ValueError("every hypothesis needs at least one reference")
    # sacrebleu reads references as streams (the k-th reference of every sentence); None where one has fewer
    streams = [[" ".join(refs[k]) if k < len(refs) else None for refs in references]
               for k in range(max(len(refs) for refs in references))]
    sentences = [" ".join(words) for words in hypotheses]
    return {f"bleu{n}": BLEU(max_ngram_order=n, tokenize="none", smooth_method="none")
            .corpus_score(sentences, streams).score / 100 for n in range(1, max_n + 1)}


# ---- the task's spec: how a captioning run is set up ---------------------------------------------

def load_data(config):
    from core.data import dataset_info
    data = dataset_info(config.data.name).builder(config.data, seed=config.seed)
    if config.data.limit:
        data.train_x, data.train_captions = data.train_x[:config.data.limit], data.train_captions[:config.data.limit]
    return data


def setup(config, device):
    from core.data.scenes import CaptionBatches, Vocabulary, encode_captions, tokenize
    from core.data.splits import channel_mean_std
    from core.options import resolve
    from core.tasks import Setup

    opts = resolve(config.task_options, TASK_OPTIONS)
    data = load_data(config)
    max_length = opts["max_length"]
    vocab = Vocabulary.build([tokenize(c) for caps in data.train_captions for c in caps], opts["min_count"])
    mean, std = map(list, channel_mean_std(data.train_x))
    batch = config.optim.batch_size
    tokens, owner = encode_captions(data.train_captions, vocab, max_length)
    train = CaptionBatches(data.train_x, tokens, owner, batch_size=batch, device=device, mean=mean, std=std,
                           shuffle=True, drop_last=True, seed=config.seed)
    val_tokens, val_owner = encode_captions(data.val_captions, vocab, max_length)
    references = [[tokenize(c) for c in caps] for caps in data.val_captions]
    val = CaptionBatches(data.val_x, val_tokens, val_owner, batch_size=max(batch, 256), device=device, mean=mean,
                         std=std, shuffle=False, references=references)
    model = build_model(config, {"vocab": vocab.words})

    shown = data.val_x[:SAMPLE_IMAGES]
    task = CaptioningTask(vocab=vocab, max_length=max_length, sample_every=opts["sample_every"],
                          sample_images=val.normalise(shown.to(val.device)),
                          sample_pngs=[png_base64(x) for x in shown], sample_references=data.val_captions[:len(shown)])
    metadata = {"vocab": vocab.words, "max_length": max_length,
                "preprocessing": {"mean": mean, "std": std, "image_size": int(data.image_size), "channels": 3},
                "data": {"train_images": len(data.train_captions), "train_captions": len(owner),
                         "val_images": len(data.val_captions), "val_captions": len(val_owner),
                         "skipped": int(data.skipped), "source": data.source}}
    return Setup(task=task, model=model, train_batches=train, val_batches=val, metadata=metadata)


def data_preview(config, count: int = 8) -> dict:
    """What the Train page shows before a run: a few images with their captions, sizes, vocabulary, parameters."""
    from collections import Counter

    from core.data.scenes import Vocabulary, tokenize
    from core.models import parameter_count
    from core.options import resolve
    opts = resolve(config.task_options, TASK_OPTIONS)
    data = load_data(config)
    words = [tokenize(c) for caps in data.train_captions for c in caps]
    vocab = Vocabulary.build(words, opts["min_count"])
    top = [w for w, _ in Counter(w for caption in words for w in caption).most_common(12)]
    return {"images": [x.permute(1, 2, 0).numpy() for x in data.train_x[:count]],
            "captions": data.train_captions[:count], "source": data.source, "image_size": int(data.image_size),
            "train_images": len(data.train_captions), "train_captions": len(words),
            "val_images": len(data.val_captions), "skipped": int(data.skipped), "vocab_size": len(vocab),
            "top_words": top, "params": parameter_count(build_model(config, {"vocab": vocab.words}))}


def build_model(config, metadata):
    from core.models import model_info
    from core.options import resolve
    spec = model_info(config.model.name)
    return spec.builder(vocab_size=len(metadata["vocab"]), **resolve(config.model.options, spec.options))


def _validate(config) -> None:
    from core.config import check_int
    from core.tasks import check_family_fields
    check_family_fields(config)
    if config.data.limit is not None:
        check_int("data.limit", config.data.limit, 1, 100_000_000)


def _spec():
    from core.tasks import TaskSpec
    return TaskSpec(name="captioning", watches=(CaptioningTask.best_metric, CaptioningTask.best_mode), title="Image captioning",
                    description="Describe an image in words: a CNN encoder and an LSTM decoder trained with "
                                "teacher forcing, scored by BLEU-1..4 of greedy captions",
                    data_kind="captions", setup=setup, build_model=build_model, validate=_validate,
                    options=TASK_OPTIONS, entry_points={"caption": "caption:load_captioner"})


SPEC = _spec()
