"""Classify a picture with an image classifier exported from Deep Learning Lab, without the lab.

    pip install onnxruntime pillow numpy
    python predict.py picture.jpg [--top-k 5] [--json]

Reads model.onnx and card.json from this file's folder and prints the most probable classes. The picture is
prepared exactly as the lab prepared its training images (card.json, "preprocessing"): turned upright, made 8-bit
RGB (transparent pixels over white), grey for one-channel models, squashed to a square of the training size with
bilinear resampling, scaled to 0-1 and normalised with the training set's mean and std.

(The lab keeps this file as core/toolkit/predict_template.py and copies it into every export bundle.)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime
from PIL import Image, ImageOps

HERE = Path(__file__).resolve().parent
HIGH_DEPTH_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
EXIF_ORIENTATION = 0x0112


def to_rgb(picture: Image.Image) -> Image.Image:
    """Any Pillow mode as 8-bit RGB, upright; transparency laid over white, 16-bit greys scaled."""
    if picture.getexif().get(EXIF_ORIENTATION, 1) != 1:
        picture = ImageOps.exif_transpose(picture)
    if picture.mode == "RGB":
        return picture
    if picture.mode in HIGH_DEPTH_MODES:
        values = np.asarray(picture, dtype=np.float32)
        top = 65535.0 if picture.mode.startswith("I;16") or (values.size and float(values.max()) > 255.0) else 255.0
        grey = np.clip(np.rint(values * (255.0 / top)), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if picture.mode == "P" and "transparency" in picture.info:
        picture = picture.convert("RGBA")
    if picture.mode in ALPHA_MODES:
        rgba = picture.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        canvas.alpha_composite(rgba)
        return canvas.convert("RGB")
    return picture.convert("RGB")


def prepare(picture: Image.Image, preprocessing: dict) -> np.ndarray:
    """A picture -> (1, C, S, S) float32, (x / 255 - mean) / std."""
    size, channels = int(preprocessing["image_size"]), int(preprocessing["channels"])
    picture = to_rgb(picture)
    if channels == 1:
        picture = picture.convert("L")
    if picture.size != (size, size):
        picture = picture.resize((size, size), Image.Resampling.BILINEAR)
    pixels = np.asarray(picture, dtype=np.uint8)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]  # (S, S, 1)
    x = pixels.transpose(2, 0, 1).astype(np.float32) / np.float32(255.0)  # (C, S, S)
    mean = np.asarray(preprocessing["mean"], dtype=np.float32).reshape(-1, 1, 1)
    std = np.asarray(preprocessing["std"], dtype=np.float32).reshape(-1, 1, 1)
    return ((x - mean) / std)[None]


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max())
    return shifted / shifted.sum()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Classify a picture with an exported lab model.")
    parser.add_argument("image", help="a picture file (JPEG, PNG, ...)")
    parser.add_argument("--top-k", type=int, default=5, help="how many classes to print")
    parser.add_argument("--model", default=str(HERE / "model.onnx"))
    parser.add_argument("--card", default=str(HERE / "card.json"))
    parser.add_argument("--json", action="store_true", help="print the classes as JSON")
    args = parser.parse_args(argv)

    card = json.loads(Path(args.card).read_text(encoding="utf-8"))
    try:
        with Image.open(args.image) as picture:
            x = prepare(picture, card["preprocessing"])
    except OSError as exc:
        print(f"error: cannot read {args.image} as a picture ({exc})", file=sys.stderr)
        return 2
    session = onnxruntime.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    logits = session.run(None, {session.get_inputs()[0].name: x})[0][0]  # (K,)
    probabilities = softmax(logits.astype(np.float64))
    classes = card["classes"]
    order = np.argsort(-probabilities, kind="stable")[:max(1, min(args.top_k, len(classes)))]
    top = [{"class": classes[i], "probability": float(probabilities[i])} for i in order]
    if args.json:
        print(json.dumps(top, ensure_ascii=False))
    else:
        for rank, item in enumerate(top, start=1):
            print(f"{rank}. {item['class']}  {item['probability']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
