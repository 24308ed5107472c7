"""What the toolkit needs of a text classification run: its data (core.tasks.run_data.RunData, for compressing
it and measuring what that costs) and what exporting it means (core.tasks.export_spec.ExportSpec: token ids in,
class scores out, the vocabulary on the model card)."""

from __future__ import annotations

import torch

from core.errors import DataError
from core.tasks.export_spec import ExportSpec
from core.tasks.run_data import RunData


def run_data(run_model) -> RunData:
    """The run's own validation texts, encoded with the checkpoint's vocabulary, on the CPU."""
    from core.data.tokens import TokenVocab
    from core.tasks.classification.evaluation import check_same_classes
    from core.tasks.text_classification import TextBatches, TextClassificationTask, encode_texts, load_texts, \
        task_options, val_batches

    config = run_model.config
    texts = load_texts(config)
    check_same_classes(run_model.run_id, list(texts.classes), list(run_model.metadata["classes"]))
    vocab = TokenVocab.from_dict(run_model.metadata["vocab"])
    device = torch.device("cpu")
    val = val_batches(config, vocab, texts, device)
    task = TextClassificationTask(num_classes=len(texts.classes))

    def train_batches():
        ids, _ = encode_texts([t for t, _ in texts.train], vocab, task_options(config)["max_len"])
        labels = torch.tensor([k for _, k in texts.train], dtype=torch.long)
        return TextBatches(ids, labels, batch_size=config.optim.batch_size, device=device, seed=config.seed)

    def labelled(n: int):
        rows = torch.arange(n) % len(val.ids)
        ids = val.ids[rows]
        return ids[:, :max(1, int((ids != 0).sum(1).max()))], val.labels[rows]

    return RunData(metric="val_acc", mode="max", evaluate=lambda model: task.evaluate(model, val)["val_acc"],
                   example=lambda n: labelled(n)[0], train_batches=train_batches, training_step=task.training_step,
                   labelled=labelled,
                   note=f"val_acc over the run's {len(texts.val)} validation texts; latency is per padded batch")


def export_spec(run_model) -> ExportSpec:
    from core.data.tokens import TokenVocab
    meta = run_model.metadata
    vocab = TokenVocab.from_dict(meta["vocab"])
    classes = list(meta["classes"])
    interface = {
        "classes": classes,
        "tokens": vocab.to_dict(),  # characters, or the tokenizers JSON of the learned subwords
        "window": int(meta["max_len"]),
        "input": {"name": "tokens", "dtype": "int64", "shape": ["N", "T"],
                  "meaning": f"token ids (0 = padding, 1 = unknown), T at most {meta['max_len']}; subword ids come "
                             "from the tokenizers JSON under `tokens`"},
        "output": {"name": "logits", "shape": ["N", len(classes)],
                   "meaning": "scores over `classes`; softmax gives probabilities"},
    }
    return ExportSpec(describe="A text classifier", part=run_model.model, inputs=lambda n: _inputs(run_model, n),
                      input_name="tokens", output_name="logits", interface=interface, varying_axes=(1,))


def _inputs(run_model, n: int):
    try:
        return run_data(run_model).example(n), "validation", ""
    except DataError as exc:
        generator = torch.Generator().manual_seed(0)
        ids = torch.randint(2, 50, (n, 32), generator=generator)
        return ids, "random", f"checked on random token ids: the run's texts cannot be read ({exc})"
