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
