"""Character-level language modelling: predict each next character of a text (char-rnn, nanoGPT's
shakespeare_char).

The loss is the cross-entropy of the next character, in nats per character; the same number divided
by ln 2 is bits per character (bpc), the unit papers report. A model that knows only how often each
character occurs scores the unigram entropy (about 4.5 bits on English prose); ln(vocabulary) is what
a model that knows nothing scores. While training, a text sample is generated every `sample_every` steps
from a fixed prompt with a fixed seed, so the samples show the same model getting better.
"""

from __future__ import annotations

import math
from contextlib import nullcontext

import torch
from torch.nn import functional as F

from core.errors import ConfigError, DataError
from core.options import Option, resolve

LN2 = math.log(2.0)

OPTIONS = {
    "context": Option(128, "Characters the model sees at once (the block size); the GPT cannot look further "
                      "back, the recurrent models are trained on windows this long", 4, 4096, label="Context length"),
    "steps_per_epoch": Option(200, "Batches of random windows per epoch (an epoch ends with a validation pass "
                              "and a checkpoint)", 1, 1_000_000, label="Steps per epoch"),
    "eval_batches": Option(20, "Batches of validation windows per evaluation (the same windows every time)", 1,
                           100_000, label="Validation batches"),
    "sample_every": Option(200, "Steps between generated text samples (0 = none)", 0, 10_000_000,
                           label="Sample every (steps)"),
    "sample_length": Option(200, "Characters per generated sample", 1, 10_000, label="Sample length"),
    "sample_temperature": Option(0.8, "Sampling temperature of the samples (lower: safer, more repetitive)",
                                 0.05, 5.0, label="Sample temperature"),
    "sample_prompt": Option("", "Text the samples continue (empty: a new line); characters the text never uses "
                            "are dropped", label="Sample prompt"),
}


class LanguageModelTask:
    name = "language_model"
    best_metric = "val_loss"
    best_mode = "min"

    def __init__(self, *, vocab, prompt: str, sample_every: int = 0, sample_length: int = 200,
                 sample_temperature: float = 0.8, seed: int = 0):
        self.vocab = vocab  # core.data.text.Vocabulary
        self.prompt = prompt
        self.sample_every = sample_every  # read by core.engine.samples.SampleLogger
        self.sample_length, self.sample_temperature, self.seed = sample_length, sample_temperature, seed

    def training_step(self, model, batch):
        inputs, targets = batch  # (B, T), (B, T)
        logits = model(inputs)  # (B, T, V)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
        with torch.no_grad():  # torch.full, not torch.tensor: a copy from the host would wait for the device
            sums = {"loss": loss.detach().float() * targets.numel(),
                    "count": torch.full((), targets.numel(), device=targets.device)}  # characters predicted
        return loss, sums

    def summarize(self, sums):
        loss = float(sums["loss"]) / max(float(sums["count"]), 1.0)
        return {"loss": loss, "bpc": loss / LN2}

    @torch.inference_mode()
    def evaluate(self, model, batches, autocast=None):
        was_training = model.training
        model.eval()
        loss_sum, count = None, 0
        for inputs, targets in batches.epoch(0):  # the same windows every evaluation: comparable numbers
            with autocast() if autocast else nullcontext():
                logits = model(inputs).float()  # (B, T, V)
            batch_loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), reduction="sum")
            loss_sum = batch_loss if loss_sum is None else loss_sum + batch_loss
            count += targets.numel()
        model.train(was_training)
        if not count:
            return {}
        loss = float(loss_sum) / count
        return {"val_loss": loss, "val_bpc": loss / LN2}

    @torch.inference_mode()
    def evaluate_split(self, model, batches, autocast=None) -> dict[str, float]:
        """The loss over a whole split, every character after the first predicted exactly once.

        `evaluate` averages random windows (nanoGPT's estimate, cheap enough to run every epoch); this pass
        cuts the split (`batches.data`, a CharBatches) into consecutive windows of the context length, the
        last one shorter, so the figure covers the split and nothing twice. A GPT sees, as in training,
        between 0 and context - 1 earlier characters of the window.
        """
        data, context, batch_size = batches.data, batches.context, batches.batch_size  # (N,) on the device
        predicted = len(data) - 1
        if predicted < 1:
            return {}
        was_training = model.training
        model.eval()
        full = predicted // context  # windows of exactly `context` predictions
        starts = torch.arange(full, device=data.device) * context  # (full,)
        window = torch.arange(context + 1, device=data.device)  # (T + 1,)
        loss_sum = torch.zeros((), device=data.device, dtype=torch.float64)

        def add(inputs, targets):
            with autocast() if autocast else nullcontext():
                logits = model(inputs).float()  # (B, T, V)
            flat = logits.reshape(-1, logits.size(-1))  # (B * T, V)
            return F.cross_entropy(flat, targets.reshape(-1), reduction="sum").double()

        for chunk in starts.split(batch_size):  # (B,)
            windows = data[chunk[:, None] + window].long()  # (B, T + 1)
            loss_sum += add(windows[:, :-1], windows[:, 1:])
        if predicted % context:  # the tail: fewer than `context` characters left
            tail = data[full * context:].long()[None]  # (1, t + 1)
            loss_sum += add(tail[:, :-1], tail[:, 1:])
        model.train(was_training)
        loss = float(loss_sum) / predicted
        return {"val_loss": loss, "val_bpc": loss / LN2, "val_chars": predicted}

    def samples(self, model) -> dict[str, str]:
        """{'text': prompt + continuation}: temperature sampling with a fixed seed (called under no_grad)."""
        from core.models.char_lm import sample_text
        text = sample_text(model, self.vocab, self.prompt, length=self.sample_length,
                           temperature=self.sample_temperature, seed=self.seed)
        return {"text": self.prompt + text}


# ---- the task's spec: how a language-model run is set up ------------------------------------------

def start_prompt(requested: str, vocab) -> str:
    """The samples' prompt: the requested text without unknown characters, else a new line (or the most
    natural first character the vocabulary has)."""
    known = "".join(c for c in requested if c in vocab.index)
    if known:
        return known
    return "\n" if "\n" in vocab.index else vocab.chars[0]


def model_options(config) -> dict:
    from core.models import model_info
    return resolve(config.model.options, model_info(config.model.name).options)


def setup(config, device):
    from core.data.loader import derive_seed
    from core.data.text import TEXT_OPTIONS, CharBatches, Vocabulary, load_corpus, split_text
    from core.tasks import Setup

    options = resolve(config.task_options, OPTIONS)
    data_options = resolve(config.data.options, TEXT_OPTIONS)
    context = options["context"]
    corpus = load_corpus(config.data)
    train_text, val_text = split_text(corpus.text, data_options["val_fraction"])
    if len(val_text) < context + 1:
        raise DataError(
            f"the text has {len(corpus.text):,} characters, so its validation part "
            f"({data_options['val_fraction']:.0%}) holds {len(val_text):,}, fewer than the context of {context} + 1; "
            f"use a longer text or a context of at most {max(1, len(val_text) - 1)} (task_options.context)")
    vocab = Vocabulary.from_text(corpus.text)
    ids = vocab.encode(corpus.text)  # (N,)
    batch = config.optim.batch_size
    train = CharBatches(ids[:len(train_text)], context=context, batch_size=batch,
                        batches=options["steps_per_epoch"], device=device, seed=config.seed)
    val = CharBatches(ids[len(train_text):], context=context, batch_size=batch, batches=options["eval_batches"],
                      device=device, seed=derive_seed(config.seed, 1))
    model = build_model(config, {"vocab": vocab.chars, "context": context})
    prompt = start_prompt(options["sample_prompt"], vocab)
    task = LanguageModelTask(vocab=vocab, prompt=prompt, sample_every=options["sample_every"],
                             sample_length=options["sample_length"],
                             sample_temperature=options["sample_temperature"], seed=config.seed)
    metadata = {"vocab": list(vocab.chars), "context": context, "sample_prompt": prompt,
                "data": {"train": len(train_text), "val": len(val_text), "unit": "characters",
                         "source": corpus.source, "vocab_size": len(vocab)}}
    return Setup(task=task, model=model, train_batches=train, val_batches=val, metadata=metadata)


def build_model(config, metadata):
    from core.models import model_info
    builder = model_info(config.model.name).builder  # language models take vocab_size and context
    return builder(vocab_size=len(metadata["vocab"]), context=metadata["context"], **model_options(config))


def _validate(config) -> None:
    from pathlib import Path

    from core.tasks import check_family_fields
    check_family_fields(config)
    options = model_options(config)
    if "heads" in options and options["embed"] % options["heads"]:
        raise ConfigError(f"model.options.heads: the embedding size ({options['embed']}) must be divisible by the "
                          f"number of heads ({options['heads']})")
    if config.data.path and not Path(config.data.path).expanduser().is_file():
        raise ConfigError(f"data.path: no file at '{config.data.path}'; upload a .txt file or give the path of one")


def _spec():
    from core.tasks import TaskSpec
    return TaskSpec(name="language_model", watches=(LanguageModelTask.best_metric, LanguageModelTask.best_mode), title="Character language model",
                    description="Predict the next character of a text: RNN, LSTM, GRU or a small GPT; loss in "
                                "bits per character, generated samples as it learns",
                    data_kind="text", setup=setup, build_model=build_model, validate=_validate, options=OPTIONS,
                    entry_points={"generate": "generate:generate", "explain": "generate:attention_map",
                                  "run_data": "run_data:run_data", "export": "export_spec:export_spec"})


SPEC = _spec()
