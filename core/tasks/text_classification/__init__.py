"""Text classification: one class per text (which package a docstring came from, the sentiment of a review),
with a bag of embeddings, a 1-D CNN (Kim 2014), a BiLSTM or a small Transformer over characters or a subword
vocabulary learned from the training texts (core.data.tokens).

Cross-entropy loss; the watched metric is `val_acc`. Texts longer than the window (`max_len` tokens) are
cut; how many were is part of the run's data summary.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
from torch.nn import functional as F

from core.errors import ConfigError, DataError
from core.options import Option, resolve

OPTIONS = {
    "tokens": Option("subword", "subword: a byte-pair vocabulary learned from the training texts (words and their "
                     "pieces); char: one token per character", choices=("subword", "char"), label="Tokens"),
    "vocab_size": Option(2000, "Size of the learned subword vocabulary (ignored for characters)", 100, 100_000,
                         label="Subword vocabulary size"),
    "max_len": Option(256, "Longest text in tokens; longer ones are cut (characters: use about 4 times as many)",
                      8, 4096, label="Window (tokens)"),
}
PAD_ID = 0


class TextBatches:
    """Batches of (ids (B, T), labels (B,)) from padded rows, each batch cut to its longest text."""

    def __init__(self, ids, labels, *, batch_size: int, device, seed: int = 0, shuffle: bool = True):
        self.ids, self.labels = ids, labels  # (N, L) int64, (N,) int64
        self.batch_size, self.device, self.seed, self.shuffle = batch_size, device, seed, shuffle

    def __len__(self) -> int:
        return -(-len(self.ids) // self.batch_size)

    def epoch(self, index: int, start_batch: int = 0):
        n = len(self.ids)
        order = (torch.randperm(n, generator=torch.Generator().manual_seed(self.seed * 100_003 + index))
                 if self.shuffle else torch.arange(n))
        for b in range(start_batch, len(self)):
            rows = order[b * self.batch_size:(b + 1) * self.batch_size]
            ids = self.ids[rows]
            ids = ids[:, :max(1, int((ids != PAD_ID).sum(1).max()))]
            yield ids.to(self.device), self.labels[rows].to(self.device)


def encode_texts(texts, vocab, max_len: int):
    """(ids (N, L) int64 padded with 0, number of texts cut) for a list of texts."""
    encoded = [vocab.encode(text, max_len=max_len) for text in texts]
    longest = max([len(e.ids) for e in encoded] + [1])
    ids = torch.zeros(len(encoded), longest, dtype=torch.long)
    for i, e in enumerate(encoded):
        ids[i, :len(e.ids)] = torch.tensor(e.ids, dtype=torch.long)
    return ids, sum(1 for e in encoded if e.cut)


class TextClassificationTask:
    name = "text_classification"
    best_metric = "val_acc"
    best_mode = "max"

    def __init__(self, *, num_classes: int):
        self.num_classes = num_classes

    def training_step(self, model, batch):
        ids, labels = batch
        logits = model(ids)  # (B, K)
        loss = F.cross_entropy(logits, labels)
        with torch.no_grad():
            sums = {"loss": loss.detach().float() * labels.numel(), "correct": (logits.argmax(1) == labels).sum(),
                    "count": torch.tensor(labels.numel(), device=labels.device)}
        return loss, sums

    def summarize(self, sums):
        count = max(float(sums["count"]), 1.0)
        return {"loss": float(sums["loss"]) / count, "acc": float(sums["correct"]) / count}

    @torch.inference_mode()
    def evaluate(self, model, batches, autocast=None):
        predicted, _, labels, loss = predict_batches(model, batches, autocast)
        if not len(labels):
            return {}
        return {"val_loss": loss / len(labels), "val_acc": float((predicted == labels).float().mean())}


@torch.inference_mode()
def predict_batches(model, batches, autocast=None):
    """(predicted (N,), confidence (N,), labels (N,), summed loss) over every batch, on the CPU."""
    was_training = model.training
    model.eval()
    predicted, confidence, labels, loss = [], [], [], 0.0
    for ids, target in batches.epoch(0):
        with autocast() if autocast else nullcontext():
            logits = model(ids).float()  # (B, K)
        loss += float(F.cross_entropy(logits, target, reduction="sum"))
        probs = torch.softmax(logits, 1)
        predicted.append(probs.argmax(1).cpu())
        confidence.append(probs.max(1).values.cpu())
        labels.append(target.cpu())
    model.train(was_training)
    if not labels:
        return torch.zeros(0, dtype=torch.long), torch.zeros(0), torch.zeros(0, dtype=torch.long), 0.0
    return torch.cat(predicted), torch.cat(confidence), torch.cat(labels), loss


# ---- the task's spec ---------------------------------------------------------------------------------

def task_options(config) -> dict:
    return resolve(config.task_options, OPTIONS)


def load_texts(config):
    """The run's LabelledTexts (train and validation texts with class indices), as its data set builds them."""
    from core.data import dataset_info
    data = dataset_info(config.data.name).builder(config.data, seed=config.seed)
    if not data.train or not data.val:
        raise DataError(f"data set {config.data.name} gave {len(data.train)} training and {len(data.val)} validation "
                        "texts; both must be non-empty")
    return data


def val_batches(config, vocab, texts, device, batch_size: int | None = None):
    """The validation batches of a run, encoded with `vocab` (at training, or a checkpoint's)."""
    from core.data.loader import derive_seed
    ids, _ = encode_texts([t for t, _ in texts.val], vocab, task_options(config)["max_len"])
    labels = torch.tensor([k for _, k in texts.val], dtype=torch.long)
    return TextBatches(ids, labels, batch_size=batch_size or max(config.optim.batch_size, 256), device=device,
                       seed=derive_seed(config.seed, 1), shuffle=False)


def setup(config, device):
    from core.data.tokens import TokenVocab
    from core.tasks import Setup

    options = task_options(config)
    data = load_texts(config)
    vocab = TokenVocab.fit([text for text, _ in data.train], kind=options["tokens"], size=options["vocab_size"])
    train_ids, train_cut = encode_texts([t for t, _ in data.train], vocab, options["max_len"])
    train_labels = torch.tensor([k for _, k in data.train], dtype=torch.long)
    train = TextBatches(train_ids, train_labels, batch_size=config.optim.batch_size, device=device, seed=config.seed)
    val = val_batches(config, vocab, data, device)
    lengths = (train_ids != PAD_ID).sum(1).float()
    metadata = {"classes": list(data.classes), "vocab": vocab.to_dict(), "max_len": options["max_len"],
                "examples": [[text[:400], data.classes[k]] for text, k in data.val[:8]],
                "data": {"train": len(data.train), "val": len(data.val), "unit": "texts", "source": data.source,
                         "skipped": data.skipped_count, "skipped_notes": data.skipped[:20],
                         "vocab_size": len(vocab), "mean_tokens": round(float(lengths.mean()), 1),
                         "cut": train_cut}}
    model = build_model(config, metadata)
    return Setup(task=TextClassificationTask(num_classes=len(data.classes)), model=model, train_batches=train,
                 val_batches=val, metadata=metadata)


def build_model(config, metadata):
    from core.data.tokens import TokenVocab
    from core.models import model_info
    spec = model_info(config.model.name)
    vocab = len(TokenVocab.from_dict(metadata["vocab"]))
    return spec.builder(vocab=vocab, num_classes=len(metadata["classes"]), max_len=int(metadata["max_len"]),
                        **resolve(config.model.options, spec.options))


def validate(config) -> None:
    from core.models import model_info
    from core.tasks import check_family_fields
    check_family_fields(config)
    options = resolve(config.model.options, model_info(config.model.name).options)
    if "heads" in options and options["embed"] % options["heads"]:
        raise ConfigError(f"model.options.heads: the embedding size ({options['embed']}) must divide by the number "
                          f"of heads ({options['heads']}); try heads = {_divisor(options['embed'], options['heads'])}")
    if "widths" in options:
        from core.models.text_classifiers import kernel_widths
        try:
            kernel_widths(options["widths"])
        except ValueError:
            raise ConfigError("model.options.widths: give kernel widths from 1 to 32, comma-separated, e.g. 3,4,5") \
                from None
    if config.model.pretrained:
        raise ConfigError("model.pretrained: text classifiers here are trained from scratch; turn it off")


def _divisor(embed: int, heads: int) -> int:
    return max(h for h in range(1, heads + 1) if embed % h == 0)


def _spec():
    from core.tasks import TaskSpec
    return TaskSpec(name="text_classification", watches=(TextClassificationTask.best_metric,
                                                          TextClassificationTask.best_mode),
                    title="Text classification",
                    description="Predict one class per text with a bag of embeddings, a CNN, a BiLSTM or a small "
                                "Transformer over characters or learned subwords; confusion matrix and per-token "
                                "attributions",
                    data_kind="labelled-text", setup=setup, build_model=build_model, validate=validate,
                    options=OPTIONS,
                    entry_points={"classify_text": "predict:classify_text", "explain_text": "predict:explain_text",
                                  "evaluate": "evaluation:evaluate_run", "run_data": "toolkit:run_data",
                                  "export": "toolkit:export_spec"})


SPEC = _spec()
