"""Image captioning presets (core.tasks.captioning): plain data, no torch."""

PRESETS = {
    "scenes-captioning": (
        "CNN + LSTM captioner on generated scenes of coloured shapes; offline, readable captions in a few "
        "minutes on a CPU",
        {"task": "captioning",
         "task_options": {"min_count": 1, "max_length": 20, "sample_every": 50},
         "data": {"name": "captioned-scenes", "options": {"num_samples": 3000, "image_size": 64, "max_shapes": 3}},
         "model": {"name": "cnn_lstm_captioner",
                   "options": {"encoder": "small_cnn", "width": 16, "embed_dim": 64, "hidden_size": 128,
                               "layers": 1, "inject": "init"}},
         "optim": {"optimizer": "adam", "lr": 3e-3, "epochs": 25, "batch_size": 32, "grad_clip": 5.0,
                   "schedule": "cosine"},
         "log_every": 10},
    ),
}
