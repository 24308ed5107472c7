"""Presets of character language models: four offline ones on Python's own documentation (minutes on a
CPU) and nanoGPT's baby GPT on Tiny Shakespeare (meant for a GPU). Plain data, no torch.

Settings follow the classics: char-rnn (Karpathy, 2015) trained 2-layer recurrent networks on windows of
50-100 characters with gradients clipped at 5; nanoGPT's shakespeare_char trains a 6-layer, 6-head,
384-wide GPT on 256-character windows, batch 64, learning rate 1e-3 with warm-up and cosine decay over
5,000 iterations, dropout 0.2 (validation loss about 1.47 nats per character).
"""


def _pydocs(model: str, options: dict, *, lr: float, context: int, epochs: int, batch: int = 32) -> dict:
    return {
        "task": "language_model",
        "task_options": {"context": context, "steps_per_epoch": 200, "eval_batches": 20, "sample_every": 200},
        "data": {"name": "pydocs"},
        "model": {"name": model, "options": options},
        "optim": {"optimizer": "adamw", "lr": lr, "weight_decay": 0.01, "batch_size": batch, "epochs": epochs,
                  "schedule": "cosine", "warmup_epochs": 0.25, "grad_clip": 1.0},
        "log_every": 20,
    }


_RNN = {"embed": 64, "hidden": 192, "layers": 2, "dropout": 0.0}

PRESETS = {
    "pydocs-char-rnn": (
        "Vanilla 2-layer RNN (char-rnn) on Python's docstrings; offline, minutes on a CPU",
        _pydocs("char_rnn", _RNN, lr=2e-3, context=64, epochs=8)),
    "pydocs-char-lstm": (
        "2-layer LSTM (char-rnn) on Python's docstrings; offline, minutes on a CPU",
        _pydocs("char_lstm", _RNN, lr=3e-3, context=64, epochs=8)),
    "pydocs-char-gru": (
        "2-layer GRU on Python's docstrings; offline, minutes on a CPU",
        _pydocs("char_gru", _RNN, lr=3e-3, context=64, epochs=8)),
    "pydocs-char-gpt": (
        "Small GPT (3 layers, 4 heads, 96 wide) on Python's docstrings; offline, minutes on a CPU",
        _pydocs("char_gpt", {"layers": 3, "heads": 4, "embed": 96, "dropout": 0.0, "tie_weights": True},
                lr=3e-3, context=64, epochs=8)),
    "shakespeare-char-gpt": (
        "nanoGPT's baby GPT (6 layers, 6 heads, 384 wide, context 256) on Tiny Shakespeare, 5,000 steps; "
        "downloaded data, meant for a GPU",
        {
            # nanoGPT's config/train_shakespeare_char.py in our terms: 20 epochs x 250 steps = its 5,000
            # iterations (an epoch here is steps_per_epoch batches of random windows; nanoGPT also evaluates
            # every 250), warm-up 0.4 epoch = its 100 iterations. Evaluation: 50 batches of random
            # validation windows (nanoGPT: 200), 820k predictions of a 111,540-character split, so it stays a
            # small part of the run; bench/families.py --shakespeare also scores the whole split, each
            # character once.
            # AdamW's beta2 0.99 and cosine decay to min_lr = lr / 10 as nanoGPT; bf16 autocast and
            # torch.compile apply on CUDA only.
            "task": "language_model",
            "task_options": {"context": 256, "steps_per_epoch": 250, "eval_batches": 50, "sample_every": 500,
                             "sample_length": 500},
            "data": {"name": "tinyshakespeare"},
            "model": {"name": "char_gpt",
                      "options": {"layers": 6, "heads": 6, "embed": 384, "dropout": 0.2, "tie_weights": True,
                                  "bias": False}},
            "optim": {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.1, "batch_size": 64, "epochs": 20,
                      "schedule": "cosine", "warmup_epochs": 0.4, "grad_clip": 1.0, "beta2": 0.99,
                      "min_lr_fraction": 0.1},
            "amp": "bf16",
            "compile": True,
            "log_every": 50,
        }),
}
