"""Video classification presets: the fusion variants of Karpathy et al. (2014), (2+1)-D convolutions and
CNN + LSTM on the same generated moving-shapes clips, so their runs compare like for like on the Runs
page. Offline; a minute or two each on a CPU."""

_MODELS = {
    "single-frame": ("single_frame", "Middle frame only: stays near chance (1/8), since no single frame "
                                     "tells the classes apart"),
    "early-fusion": ("early_fusion", "Early fusion: all 8 frames stacked into the first convolution"),
    "late-fusion": ("late_fusion", "Late fusion: a shared CNN on the first and last frames, merged in the "
                                   "fully connected layers"),
    "slow-fusion": ("slow_fusion", "Slow fusion: 3-D convolutions that mix time gradually through the layers"),
    "r2plus1d": ("r2plus1d", "(2+1)-D residual network: spatial then temporal convolution in every block"),
    "cnn-lstm": ("cnn_lstm", "A per-frame CNN whose features an LSTM reads in order"),
}


# The LSTM reads every position of its feature maps: a narrower CNN keeps it as quick as the others,
# and it needs a higher rate to leave its first plateau within six epochs.
_OVERRIDES = {"cnn_lstm": ({"width": 8, "lstm_hidden": 48}, 4e-3)}


def _config(model: str) -> dict:
    # fresh dicts per preset: RunConfig.from_dict keeps the option dicts it is given
    options, lr = _OVERRIDES.get(model, ({"width": 16}, 2e-3))
    return {"task": "video",
            "data": {"name": "moving-shapes", "options": {"frames": 8, "size": 32, "num_samples": 1600},
                     "val_fraction": 0.25},
            "model": {"name": model, "hidden": 128, "dropout": 0.1, "options": dict(options)},
            "optim": {"optimizer": "adam", "lr": lr, "epochs": 6, "batch_size": 32, "schedule": "cosine"},
            "log_every": 10}


PRESETS = {f"moving-shapes-{suffix}": (f"{text} (moving shapes, 8 classes; offline, about a minute on a CPU)",
                                       _config(model))
           for suffix, (model, text) in _MODELS.items()}
