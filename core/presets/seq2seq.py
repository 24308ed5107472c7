"""Presets of sequence-to-sequence models with attention: offline, generated data, minutes on a CPU.
Plain data, no torch."""

GRU = {"name": "gru_attention", "options": {"embed": 32, "hidden": 128, "attention": "bahdanau"}}
TRANSFORMER = {"name": "transformer_seq2seq", "options": {"d_model": 64, "heads": 4, "layers": 2, "ff": 128,
                                                          "dropout": 0.0}}


def _pairs(data: dict, *, epochs: int, lr: float = 5e-3, batch: int = 128, model: dict = GRU,
           warmup: float = 0.0) -> dict:
    return {
        "task": "seq2seq",
        "task_options": {"eval_examples": 1000},
        "data": data,
        "model": model,
        "optim": {"optimizer": "adam", "lr": lr, "batch_size": batch, "epochs": epochs, "schedule": "cosine",
                  "warmup_epochs": warmup, "grad_clip": 1.0},
        "log_every": 10,
    }


PRESETS = {
    "numbers-en-gru-attention": (
        "Numbers 0 to 9,999 into English words with a GRU encoder-decoder and Bahdanau attention; offline, "
        "minutes on a CPU",
        _pairs({"name": "numbers-en"}, epochs=5)),
    "numbers-en-transformer": (
        "Numbers 0 to 9,999 into English words with a small Transformer encoder-decoder; offline, minutes on a CPU",
        # smaller batches than the GRU's: more updates for the same samples helped this model most; no dropout,
        # the data is exact. 100% val_exact from epoch 2 of 6, under 2 minutes on two busy CPU cores
        _pairs({"name": "numbers-en"}, epochs=6, batch=64, warmup=0.3, model=TRANSFORMER)),
    "numbers-zh-gru-attention": (
        "Numbers 0 to 9,999 into Chinese characters with a GRU encoder-decoder and Bahdanau attention; offline, "
        "minutes on a CPU",
        _pairs({"name": "numbers-zh"}, epochs=5)),
    "dates-gru-attention": (
        "Dates in five formats into ISO form with a GRU encoder-decoder and Bahdanau attention; offline, "
        "minutes on a CPU",
        _pairs({"name": "dates", "options": {"examples": 20000}}, epochs=3)),
}
