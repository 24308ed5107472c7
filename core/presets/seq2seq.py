"""Presets of sequence-to-sequence models with attention: offline, generated data, minutes on a CPU.
Plain data, no torch."""


def _pairs(data: dict, *, epochs: int, lr: float = 5e-3, batch: int = 128) -> dict:
    return {
        "task": "seq2seq",
        "task_options": {"eval_examples": 1000},
        "data": data,
        "model": {"name": "gru_attention", "options": {"embed": 32, "hidden": 128, "attention": "bahdanau"}},
        "optim": {"optimizer": "adam", "lr": lr, "batch_size": batch, "epochs": epochs, "schedule": "cosine",
                  "grad_clip": 1.0},
        "log_every": 10,
    }


PRESETS = {
    "numbers-en-gru-attention": (
        "Numbers 0 to 9,999 into English words with a GRU encoder-decoder and Bahdanau attention; offline, "
        "minutes on a CPU",
        _pairs({"name": "numbers-en"}, epochs=5)),
    "dates-gru-attention": (
        "Dates in five formats into ISO form with a GRU encoder-decoder and Bahdanau attention; offline, "
        "minutes on a CPU",
        _pairs({"name": "dates", "options": {"examples": 20000}}, epochs=3)),
}
