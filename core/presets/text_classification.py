"""Presets of text classifiers on the offline standard-library docstrings (which package a docstring came from):
minutes on a 2-core CPU. Plain data, no torch."""


def _docstrings(model: dict, *, epochs: int, lr: float, max_len: int = 256, tokens: str = "subword",
                warmup: float = 0.0) -> dict:
    return {
        "task": "text_classification",
        "task_options": {"tokens": tokens, "vocab_size": 2000, "max_len": max_len},
        "data": {"name": "docstrings"},
        "model": model,
        "optim": {"optimizer": "adamw", "lr": lr, "weight_decay": 0.01, "batch_size": 32, "epochs": epochs,
                  "schedule": "cosine", "warmup_epochs": warmup, "grad_clip": 1.0},
        "log_every": 10,
    }


PRESETS = {
    "docstrings-bag": (
        "Which standard-library package a docstring comes from, with a bag of subword embeddings (fastText-like "
        "baseline); offline, about a minute on a CPU",
        _docstrings({"name": "text_bag", "options": {"embed": 64, "dropout": 0.3}}, epochs=20, lr=1e-2)),
    "docstrings-cnn": (
        "The same docstrings with a 1-D CNN over subwords, widths 3, 4 and 5 (Kim 2014); offline, minutes on a CPU",
        _docstrings({"name": "text_cnn", "options": {"embed": 64, "filters": 64, "widths": "3,4,5"}}, epochs=8,
                    lr=3e-3, max_len=192)),
    "docstrings-cnn-chars": (
        "The same docstrings with the 1-D CNN over characters instead of subwords; offline, about a minute on a CPU",
        _docstrings({"name": "text_cnn", "options": {"embed": 64, "filters": 64, "widths": "3,4,5"}}, epochs=10,
                    lr=3e-3, max_len=512, tokens="char")),
    "docstrings-bilstm": (
        "The same docstrings with a bidirectional LSTM over subwords; offline, minutes on a CPU",
        _docstrings({"name": "text_bilstm", "options": {"embed": 64, "hidden": 64}}, epochs=8, lr=3e-3,
                    max_len=192)),
    "docstrings-transformer": (
        "The same docstrings with a two-layer Transformer encoder over subwords; offline, minutes on a CPU",
        _docstrings({"name": "text_transformer", "options": {"embed": 64, "heads": 4, "layers": 2}}, epochs=10,
                    lr=3e-3, max_len=128, warmup=1.0)),
}
