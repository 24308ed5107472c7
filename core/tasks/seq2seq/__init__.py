"""Sequence to sequence with attention: read a character sequence, write another (numbers into words,
dates into ISO form, your own tab-separated pairs), with a GRU encoder-decoder that attends over the source
(Bahdanau et al. 2014) or a small Transformer.

Training is teacher-forced cross-entropy over the target characters (padding ignored), in nats per
character. The watched metric is `val_exact`: the share of validation pairs whose GREEDY decoding equals
the target exactly; `val_loss` is the teacher-forced loss on the same pairs, and `val_bleu` the corpus BLEU
(sacrebleu, 0-100) of the same greedy outputs, which gives credit for nearly right free text where exact
match gives none.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
from torch.nn import functional as F

from core.errors import ConfigError, DataError
from core.options import Option, resolve

OPTIONS = {
    "eval_examples": Option(2000, "Validation pairs decoded greedily for the exact-match score, and scored for the "
                            "loss (0 = all)", 0, 10_000_000, label="Validation pairs decoded"),
}
PAD_ID, BOS_ID, EOS_ID = 0, 1, 2


class PairBatches:
    """Batches of (src (B, S), tgt_in (B, T), tgt_out (B, T)) id tensors, padded to the batch's longest."""

    def __init__(self, src, tgt, *, batch_size: int, device, seed: int = 0, shuffle: bool = True):
        self.src, self.tgt = src, tgt  # (N, S), (N, T + 1) with bos first and eos after the text
        self.batch_size, self.device, self.seed, self.shuffle = batch_size, device, seed, shuffle

    def __len__(self) -> int:
        return -(-len(self.src) // self.batch_size)

    def epoch(self, index: int, start_batch: int = 0):
        n = len(self.src)
        if self.shuffle:
            order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed * 100_003 + index))
        else:
            order = torch.arange(n)
        for b in range(start_batch, len(self)):
            rows = order[b * self.batch_size:(b + 1) * self.batch_size]
            src, tgt = self.src[rows], self.tgt[rows]
            src = src[:, :max(1, int((src != PAD_ID).sum(1).max()))]
            tgt = tgt[:, :int((tgt != PAD_ID).sum(1).max())]
            yield src.to(self.device), tgt[:, :-1].to(self.device), tgt[:, 1:].to(self.device)


def encode_pairs(pairs, src_vocab, tgt_vocab):
    """(src (N, S), tgt (N, T + 2)) padded id tensors: targets as bos + text + eos."""
    src_len = max(len(s) for s, _ in pairs)
    tgt_len = max(len(t) for _, t in pairs) + 2
    src = torch.zeros(len(pairs), src_len, dtype=torch.long)
    tgt = torch.zeros(len(pairs), tgt_len, dtype=torch.long)
    for i, (s, t) in enumerate(pairs):
        src[i, :len(s)] = torch.tensor(src_vocab.encode(s), dtype=torch.long)
        ids = [BOS_ID, *tgt_vocab.encode(t), EOS_ID]
        tgt[i, :len(ids)] = torch.tensor(ids, dtype=torch.long)
    return src, tgt


class Seq2SeqTask:
    name = "seq2seq"
    best_metric = "val_exact"
    best_mode = "max"

    def __init__(self, *, max_tgt: int, tgt_tokens=None):
        from core.data.pairs import CharVocab
        self.max_tgt = max_tgt  # longest target in characters; greedy decoding stops at max_tgt + 1 steps
        # the target vocabulary, to score BLEU on text; None: no val_bleu
        self.tgt_vocab = CharVocab(tgt_tokens) if tgt_tokens is not None else None

    def training_step(self, model, batch):
        src, tgt_in, tgt_out = batch
        logits = model(src, tgt_in)  # (B, T, V)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), tgt_out.reshape(-1), ignore_index=PAD_ID)
        with torch.no_grad():
            tokens = (tgt_out != PAD_ID).sum()
            sums = {"loss": loss.detach().float() * tokens, "tokens": tokens,
                    "count": torch.tensor(src.size(0), device=src.device)}
        return loss, sums

    def summarize(self, sums):
        return {"loss": float(sums["loss"]) / max(float(sums["tokens"]), 1.0)}

    @torch.inference_mode()
    def evaluate(self, model, batches, autocast=None):
        was_training = model.training
        model.eval()
        loss_sum, tokens, exact, count = 0.0, 0, 0, 0
        hypotheses, references = [], []
        limit = getattr(batches, "limit", 0)
        for src, tgt_in, tgt_out in batches.epoch(0):
            with autocast() if autocast else nullcontext():
                logits = model(src, tgt_in).float()
                ids, _ = model.greedy(src, self.max_tgt + 1)
            loss_sum += float(F.cross_entropy(logits.reshape(-1, logits.size(-1)), tgt_out.reshape(-1),
                                              ignore_index=PAD_ID, reduction="sum"))
            tokens += int((tgt_out != PAD_ID).sum())
            exact += int(sum(_same(ids[i], tgt_out[i]) for i in range(src.size(0))))
            if self.tgt_vocab is not None:
                hypotheses += [self.tgt_vocab.decode(row) for row in ids.tolist()]
                references += [self.tgt_vocab.decode(row) for row in tgt_out.tolist()]
            count += src.size(0)
            if limit and count >= limit:
                break
        model.train(was_training)
        if not count:
            return {}
        metrics = {"val_loss": loss_sum / max(tokens, 1), "val_exact": exact / count}
        if hypotheses:
            metrics["val_bleu"] = corpus_bleu(hypotheses, references)
        return metrics


def corpus_bleu(hypotheses: list[str], references: list[str]) -> float:
    """sacrebleu's corpus BLEU (0-100) of one reference per output. Chinese targets are scored per character
    (sacrebleu's "zh" tokenizer: a Chinese sentence has no spaces, so word n-grams would be whole sentences);
    anything else with its standard 13a word tokenizer. Outputs of one word only score 0 (BLEU counts up to
    4-grams), which is why exact match stays the watched metric."""
    import sacrebleu
    chinese = any("\u4e00" <= c <= "\u9fff" for text in references for c in text)
    score = sacrebleu.corpus_bleu(hypotheses, [references], tokenize="zh" if chinese else "13a").score
    return min(100.0, float(score))  # exp(log) rounding can give 100.00000000000004


def _same(decoded, target) -> bool:
    """Decoded ids (ending at eos, or cut) equal the target ids (text + eos, then padding)?"""
    want = [int(i) for i in target if int(i) != PAD_ID]
    got = []
    for i in decoded.tolist():
        got.append(i)
        if i == EOS_ID:
            break
    return got == want


# ---- the task's spec ---------------------------------------------------------------------------------

def model_options(config) -> dict:
    from core.models import model_info
    return resolve(config.model.options, model_info(config.model.name).options)


def setup(config, device):
    from core.data import dataset_info
    from core.data.loader import derive_seed
    from core.data.pairs import CharVocab
    from core.tasks import Setup

    options = resolve(config.task_options, OPTIONS)
    data = dataset_info(config.data.name).builder(config.data, seed=config.seed)
    if not data.train or not data.val:
        raise DataError(f"data set {config.data.name} gave {len(data.train)} training and {len(data.val)} validation "
                        "pairs; both must be non-empty")
    pairs = data.train + data.val
    # the training pairs' characters only: one that only validation has is unknown, as it would be to a user
    src_vocab = CharVocab.from_texts(s for s, _ in data.train)
    tgt_vocab = CharVocab.from_texts(t for _, t in data.train)
    val_pairs = data.val[:options["eval_examples"]] if options["eval_examples"] else data.val
    train_src, train_tgt = encode_pairs(data.train, src_vocab, tgt_vocab)
    val_src, val_tgt = encode_pairs(val_pairs, src_vocab, tgt_vocab)
    batch = config.optim.batch_size
    train = PairBatches(train_src, train_tgt, batch_size=batch, device=device, seed=config.seed)
    val = PairBatches(val_src, val_tgt, batch_size=max(batch, 256), device=device, seed=derive_seed(config.seed, 1),
                      shuffle=False)
    metadata = {"src_vocab": src_vocab.tokens, "tgt_vocab": tgt_vocab.tokens,
                "max_src": max(len(s) for s, _ in pairs), "max_tgt": max(len(t) for _, t in pairs),
                "examples": [list(p) for p in data.val[:8]],
                "data": {"train": len(data.train), "val": len(data.val), "unit": "pairs", "source": data.source,
                         "skipped": data.skipped, "skipped_notes": list(data.skipped_notes)}}
    model = build_model(config, metadata)
    return Setup(task=Seq2SeqTask(max_tgt=metadata["max_tgt"], tgt_tokens=tgt_vocab.tokens), model=model,
                 train_batches=train, val_batches=val, metadata=metadata)


def build_model(config, metadata):
    from core.models import model_info
    return model_info(config.model.name).builder(src_vocab=len(metadata["src_vocab"]),
                                                  tgt_vocab=len(metadata["tgt_vocab"]), **model_options(config))


def _validate(config) -> None:
    from core.tasks import check_family_fields
    check_family_fields(config)
    options = model_options(config)
    if "heads" in options and options["d_model"] % options["heads"]:
        raise ConfigError(f"model.options.heads: the embedding size ({options['d_model']}) must be divisible by the "
                          f"number of heads ({options['heads']})")


def _spec():
    from core.tasks import TaskSpec
    return TaskSpec(name="seq2seq", watches=(Seq2SeqTask.best_metric, Seq2SeqTask.best_mode),
                    title="Sequence to sequence",
                    description="Read a character sequence and write another (numbers into words, dates into ISO "
                                "form, your own pairs) with a GRU or Transformer encoder-decoder and attention; "
                                "greedy or beam-search decoding",
                    data_kind="pairs", setup=setup, build_model=build_model, validate=_validate, options=OPTIONS,
                    entry_points={"translate": "translate:translate"})


SPEC = _spec()
