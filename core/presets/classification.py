"""Image-classification presets: from seconds on the offline digits to ResNet-18 on CIFAR-10."""

PRESETS = {
    "digits-mlp": (
        "Two-layer perceptron on scikit-learn's 8x8 digits; offline, seconds on a CPU",
        {"task": "classification", "data": {"name": "digits"}, "model": {"name": "mlp", "hidden": 128},
         "optim": {"optimizer": "adam", "lr": 3e-3, "epochs": 10, "batch_size": 64}}),
    "digits-cnn": (
        "Classic conv-pool-conv-pool-fc network on the 8x8 digits; offline, seconds on a CPU",
        {"task": "classification", "data": {"name": "digits"}, "model": {"name": "cnn", "hidden": 128},
         "optim": {"optimizer": "adam", "lr": 2e-3, "epochs": 10, "batch_size": 32}}),
    "mnist-cnn": (
        "The classic CNN on MNIST (downloaded on first use)",
        {"task": "classification", "data": {"name": "mnist"},
         "model": {"name": "cnn", "hidden": 1024, "dropout": 0.5},
         "optim": {"optimizer": "adam", "lr": 1e-3, "epochs": 5, "batch_size": 128}}),
    "cifar10-cnn": (
        "conv-pool-conv-pool-fc1024-fc on CIFAR-10 with crop and flip (downloaded on first use)",
        {"task": "classification", "data": {"name": "cifar10", "augment_crop": True, "augment_flip": True},
         "model": {"name": "cnn", "hidden": 1024, "dropout": 0.5},
         "optim": {"optimizer": "adam", "lr": 1e-3, "epochs": 30, "batch_size": 128, "schedule": "cosine"}}),
    "cifar10-resnet18": (
        "ResNet-18 for 32x32 images on CIFAR-10, SGD with one-cycle (downloaded on first use)",
        {"task": "classification", "data": {"name": "cifar10", "augment_crop": True, "augment_flip": True},
         "model": {"name": "resnet18_small"},
         "optim": {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4,
                   "schedule": "onecycle", "epochs": 30, "batch_size": 256, "label_smoothing": 0.1}}),
    "cifar10-speedrun": (
        "The CIFAR-10 speedrun (Jordan 2024, airbench94): whitened patch layer, lookahead, label smoothing, "
        "flip and shift test-time augmentation; about 94% in seconds on a GPU (downloaded on first use)",
        # airbench94's hyperparameters for a mean loss: lr 11.5 per 1024 samples over (1 + 1/(1 - 0.85)) gives
        # 1.5; its decay of 0.0153 per 1024 samples, decoupled from the lr, gives 0.0153 / 11.5 per unit lr
        {"task": "classification", "task_options": {"lookahead": True, "tta": "flip_translate"},
         "data": {"name": "cifar10", "augment_crop": True, "crop_padding": 2, "augment_flip": True},
         "model": {"name": "speedrun_net"},
         "optim": {"optimizer": "sgd", "lr": 1.5, "momentum": 0.85, "nesterov": True, "weight_decay": 0.0153 / 11.5,
                   "norm_lr_scale": 64.0, "schedule": "triangle", "epochs": 10, "batch_size": 1024,
                   "label_smoothing": 0.2},
         "amp": "bf16", "channels_last": True, "compile": True, "log_every": 16}),
    "folder-transfer-resnet18": (
        "Fine-tune an ImageNet ResNet-18's new head on your own image folder",
        {"task": "classification",
         "data": {"name": "folder", "image_size": 128, "augment_flip": True, "augment_crop": True,
                  "crop_padding": 8},
         "model": {"name": "resnet18", "pretrained": True, "freeze_backbone": True},
         "optim": {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 1e-4, "epochs": 5, "batch_size": 32,
                   "schedule": "cosine"}}),
    "shapes-cnn": (
        "The classic CNN on generated coloured shapes; offline, fast demo",
        {"task": "classification", "data": {"name": "shapes", "num_samples": 4000},
         "model": {"name": "cnn", "hidden": 256},
         "optim": {"optimizer": "adam", "lr": 1e-3, "epochs": 5, "batch_size": 64}}),
}
