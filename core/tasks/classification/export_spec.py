"""Exporting an image classifier (core.tasks.export_spec.ExportSpec): pictures in, one logit per class out,
checked on the run's own validation images, prepared as training prepared them (evaluation.py)."""

from __future__ import annotations

import copy
import json

from core.errors import DataError
from core.models.lora import lora_modules, merge_lora
from core.tasks.export_spec import ExportSpec

# How the lab's Predictor prepares a picture for a run's model (predictor.py); the bundle's predict.py does
# exactly this.
PICTURE_STEPS = [
    "turn a photo upright as its EXIF orientation says",
    "convert to 8-bit RGB: transparent pixels over white, 16-bit greys scaled to 0-255",
    "grey models (channels 1): convert the RGB picture to Pillow's mode L",
    "squash the whole picture to image_size x image_size with bilinear resampling (no crop)",
    "scale to 0-1 (x / 255), then (x - mean) / std per channel",
    "a float32 batch of shape (N, channels, image_size, image_size)",
]


def export_spec(run_model) -> ExportSpec:
    pre = run_model.metadata["preprocessing"]
    channels, size = int(pre["channels"]), int(pre["image_size"])
    interface = {
        "classes": [str(c) for c in run_model.metadata["classes"]],
        "preprocessing": {
            "image_size": size, "channels": channels, "colour": "grey (Pillow mode L)" if channels == 1 else "RGB",
            "mean": [float(m) for m in pre["mean"]], "std": [float(s) for s in pre["std"]],
            "resize": "squash the whole picture to image_size x image_size, bilinear, no crop",
            "steps": PICTURE_STEPS,
            "input": {"name": "image", "dtype": "float32", "layout": "NCHW", "shape": ["N", channels, size, size]},
            "output": {"name": "logits", "meaning": "one score per class; softmax gives probabilities"},
        },
    }
    # a LoRA run leaves with its adapters folded into the weights: the plain architecture, loadable without PEFT
    adapted = bool(lora_modules(run_model.model))
    part = merge_lora(copy.deepcopy(run_model.model)).eval() if adapted else run_model.model
    return ExportSpec(describe="An image classifier", part=part,
                      inputs=lambda n: validation_images(run_model, n), input_name="image", output_name="logits",
                      interface=interface, formats=("onnx", "torchscript", "safetensors", "bundle"),
                      rebuild=merge_lora if adapted else (lambda model: model))


def validation_images(run_model, n: int):
    """(images (n, C, S, S) float32 normalised as in training, "validation" or "random", note): the first n of the
    run's validation split, or seeded random inputs when its data set cannot be read."""
    import torch

    from core.data.loader import DeviceBatches
    from core.tasks.classification.evaluation import check_same_classes, validation_split, was_streamed

    pre = run_model.metadata["preprocessing"]
    mean, std = [float(m) for m in pre["mean"]], [float(s) for s in pre["std"]]
    try:
        config_json = json.dumps(run_model.config.to_dict(), sort_keys=True)  # the key evaluation caches under
        val_x, val_y, classes = validation_split(config_json, was_streamed(run_model.run_id))
        check_same_classes(run_model.run_id, list(classes), [str(c) for c in run_model.metadata["classes"]])
        if len(val_y) == 0:
            raise DataError("its validation split is empty")
    except DataError as exc:
        size, channels = int(pre["image_size"]), int(pre["channels"])
        generator = torch.Generator().manual_seed(0)
        batch = torch.randn((n, channels, size, size), generator=generator)
        return batch, "random", f"checked on random inputs: the run's validation images cannot be read ({exc})"
    batches = DeviceBatches(val_x[:n], val_y[:n], batch_size=n, device="cpu", mean=mean, std=std, shuffle=False)
    images, _ = next(iter(batches.epoch(0)))
    return images.contiguous(), "validation", ""
