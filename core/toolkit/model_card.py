"""The model card that travels with an exported run: what the model is, what it was trained on, how a picture must
be prepared for it, how well it did, and which software made it. JSON for programs, a short Markdown page for
people (`card_markdown`)."""

from __future__ import annotations

import time

CARD_VERSION = 1

# How the lab's Predictor prepares a picture for a run's model (core/tasks/classification/predictor.py); the
# bundle's predict.py does exactly this.
PICTURE_STEPS = [
    "turn a photo upright as its EXIF orientation says",
    "convert to 8-bit RGB: transparent pixels over white, 16-bit greys scaled to 0-255",
    "grey models (channels 1): convert the RGB picture to Pillow's mode L",
    "squash the whole picture to image_size x image_size with bilinear resampling (no crop)",
    "scale to 0-1 (x / 255), then (x - mean) / std per channel",
    "a float32 batch of shape (N, channels, image_size, image_size)",
]


def build_card(run, run_model, which: str) -> dict:
    """The card of a classification run's checkpoint. `run` is the store's record, `run_model` the loaded
    checkpoint (core.tasks.checkpoints.RunModel)."""
    from core import __version__
    from core.store.records import best_of, watched_metric

    config, metadata = run_model.config, run_model.metadata
    pre = metadata["preprocessing"]
    summary = run.summary or {}
    data = metadata.get("data") or {}
    channels = int(pre["channels"])
    return {
        "card_version": CARD_VERSION,
        "run_id": run.id,
        "name": run.name,
        "task": config.task,
        "model": config.model.name,
        "parameters": metadata.get("params"),
        "checkpoint": {"which": which, "epoch": run_model.epoch, "best_value": run_model.best_value},
        "classes": [str(c) for c in metadata["classes"]],
        "preprocessing": {
            "image_size": int(pre["image_size"]), "channels": channels,
            "colour": "grey (Pillow mode L)" if channels == 1 else "RGB",
            "mean": [float(m) for m in pre["mean"]], "std": [float(s) for s in pre["std"]],
            "resize": "squash the whole picture to image_size x image_size, bilinear, no crop",
            "steps": PICTURE_STEPS,
            "input": {"name": "image", "dtype": "float32", "layout": "NCHW"},
            "output": {"name": "logits", "meaning": "one score per class; softmax gives probabilities"},
        },
        "metrics": {"watched": watched_metric(summary), "best": best_of(summary),
                    "best_epoch": summary.get("best_epoch"), "epochs_done": summary.get("epochs_done"),
                    "last": summary.get("last") or {}},
        "data": {"name": config.data.name, "path": config.data.path, "source": data.get("source"),
                 "train_images": data.get("train"), "validation_images": data.get("val"), "seed": config.seed},
        "config": config.to_dict(),
        "trained": {"created": _date(run.created_at), "ended": _date(run.ended_at), "device": run.device,
                    "software": dict(run.versions or {})},
        "exported": {"date": _date(time.time()), "lab": __version__, "software": _export_versions()},
    }


def card_markdown(card: dict) -> str:
    """A short README for people: the card's main facts, and how to prepare a picture."""
    pre, metrics, data = card["preprocessing"], card["metrics"], card["data"]
    best = metrics.get("best")
    score = f"{metrics['watched']} {best:.4f} (epoch {metrics.get('best_epoch')})" if best is not None else "none"
    classes = ", ".join(card["classes"][:30]) + (" …" if len(card["classes"]) > 30 else "")
    lines = [
        f"# {card['name']}", "",
        (f"An image classifier exported from Deep Learning Lab run `{card['run_id']}` "
         f"({card['checkpoint']['which']} checkpoint, epoch {card['checkpoint']['epoch']})."), "",
        f"- **Model**: `{card['model']}`, {card['parameters'] or '?'} parameters",
        f"- **Data set**: `{data['name']}`" + (f" ({data['path']})" if data.get("path") else "")
        + f", {data.get('train_images') or '?'} training and {data.get('validation_images') or '?'} validation images",
        f"- **Best validation score**: {score}",
        f"- **Classes** ({len(card['classes'])}): {classes}",
        f"- **Trained**: {card['trained']['created']} on {card['trained']['device'] or '?'}",
        f"- **Exported**: {card['exported']['date']} by the lab {card['exported']['lab']}", "",
        "## Preparing a picture", "",
        (f"Input: float32 `(N, {pre['channels']}, {pre['image_size']}, {pre['image_size']})`, "
         f"mean {_numbers(pre['mean'])}, std {_numbers(pre['std'])}."), "",
        *[f"{index}. {step}" for index, step in enumerate(pre["steps"], start=1)], "",
        "The output holds one logit per class, in the order of `classes`.", "",
    ]
    return "\n".join(lines)


def _numbers(values) -> str:
    return "[" + ", ".join(f"{v:.4f}" for v in values) + "]"


def _date(seconds) -> str | None:
    if not seconds:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(seconds)))


def _export_versions() -> dict:
    """The libraries that wrote and checked the export (those installed; nothing is imported for it)."""
    from importlib.metadata import PackageNotFoundError, version
    found = {}
    for name in ("torch", "onnx", "onnxscript", "onnxruntime", "safetensors"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found
