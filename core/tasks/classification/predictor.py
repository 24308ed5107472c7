"""Predictors: a trained run's checkpoint or a pretrained torchvision model, ready to classify pictures.

A `Predictor` carries the model together with exactly the preprocessing it was trained with, so an
uploaded photo is prepared the way the training images were:
  - our runs: the picture is squashed to a square of the training size (as `decode_image` did for
    folder data sets) and normalised with the training set's mean and std from the checkpoint;
  - pretrained ImageNet models: the shorter side is resized, then the centre is cropped, with the
    weights' own sizes, mean and std (torchvision's `weights.transforms()`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image
from torch import nn

from core.data.images import to_rgb
from core.errors import CheckpointError, InputError, LabError, ModelError
from core.tasks.checkpoints import existing_checkpoint, inference_device, load_run_model

PRETRAINED_CHOICES = ("resnet18", "resnet50", "mobilenet_v3_small", "efficientnet_b0")


@dataclass
class Predictor:
    model: nn.Module  # eval mode, on `device`
    classes: list[str]
    mean: list[float]  # one value per input channel
    std: list[float]
    image_size: int  # the square side the model sees
    channels: int  # 1 (grey) or 3
    label: str  # for people: "digits-cnn · best (val_acc 0.981)" or "resnet18 (ImageNet)"
    source: str  # "run" or "pretrained"
    run_id: str | None = None
    which: str | None = None  # "best" or "last" for runs
    resize_size: int | None = None  # pretrained: shorter side resized to this, then a centre crop
    crop: bool = False  # False: squash the whole picture to image_size x image_size
    config: dict | None = field(default=None, repr=False)  # the run's RunConfig dict
    epoch: int | None = None

    @property
    def device(self) -> torch.device:
        first = next(self.model.parameters(), None)
        return first.device if first is not None else torch.device("cpu")

    def view(self, image: Image.Image) -> Image.Image:
        """The picture as the model sees it before normalisation (RGB or L, image_size square)."""
        import torchvision.transforms.functional as TF

        img = to_rgb(image)
        if self.channels == 1:
            img = img.convert("L")
        if not self.crop:
            if img.size != (self.image_size, self.image_size):
                img = img.resize((self.image_size, self.image_size), Image.Resampling.BILINEAR)
            return img
        # Same steps and interpolation as torchvision's ImageClassification preset on a tensor.
        pixels = TF.pil_to_tensor(img)  # (C, H, W) uint8
        pixels = TF.resize(pixels, [self.resize_size], interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
        pixels = TF.center_crop(pixels, [self.image_size])
        return TF.to_pil_image(pixels)

    def prepare(self, image: Image.Image) -> torch.Tensor:
        """A PIL picture -> (C, H, W) float32, (x / 255 - mean) / std, on the CPU."""
        import numpy as np

        pixels = torch.from_numpy(np.array(self.view(image), dtype=np.uint8))  # (H, W) or (H, W, C)
        if pixels.dim() == 2:
            pixels = pixels.unsqueeze(-1)
        x = pixels.permute(2, 0, 1).to(torch.float32).div_(255.0)  # (C, H, W)
        mean = torch.tensor(self.mean, dtype=torch.float32).view(-1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(-1, 1, 1)
        return (x - mean) / std

    def predict(self, images: list[Image.Image], batch_size: int = 64) -> torch.Tensor:
        """Class probabilities (N, K) on the CPU, softmax of the logits, batch by batch."""
        out = []
        device = self.device
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                batch = torch.stack([self.prepare(img) for img in images[start:start + batch_size]])  # (B, C, H, W)
                logits = self.model(batch.to(device))  # (B, K)
                out.append(torch.softmax(logits.float(), dim=1).cpu())
        if not out:
            return torch.empty(0, len(self.classes))
        return torch.cat(out)

    def top_k(self, image: Image.Image, k: int = 5) -> list[tuple[str, float]]:
        """The k most probable classes for one picture, most probable first."""
        probs = self.predict([image])[0]  # (K,)
        values, indices = probs.topk(min(k, len(self.classes)))
        return [(self.classes[int(i)], float(p)) for p, i in zip(values, indices)]


# ---- trained runs ---------------------------------------------------------------------------------

def load_run_predictor(run_id: str, which: str = "best", device="cpu") -> Predictor:
    """The predictor of a run's best.pt or last.pt, cached until that file changes."""
    path, mtime_ns = existing_checkpoint(run_id, which)
    return _cached_run_predictor(str(path), run_id, which, mtime_ns, str(inference_device(device)))


@functools.lru_cache(maxsize=4)
def _cached_run_predictor(path: str, run_id: str, which: str, mtime_ns: int, device: str) -> Predictor:
    # mtime_ns is only part of the key: a rewritten checkpoint is a cache miss, never stale weights.
    run_model = load_run_model(run_id, which, device=device)
    if not is_classifier_task(run_model.task):  # image classification's entry point, or a family's that reuses it
        run_model.require("classification")
    try:
        classes = [str(c) for c in run_model.metadata["classes"]]
        pre = run_model.metadata["preprocessing"]
        size, channels = int(pre["image_size"]), int(pre["channels"])
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"{Path(path).name} of run {run_id} lacks its classes or preprocessing ({exc})") from None
    return Predictor(model=run_model.model, classes=classes, mean=[float(m) for m in pre["mean"]],
                     std=[float(s) for s in pre["std"]], image_size=size, channels=channels,
                     label=_run_label(run_id, which, run_model.config, run_model.best_value),
                     source="run", run_id=run_id, which=which, config=run_model.config.to_dict(),
                     epoch=run_model.epoch)


def is_classifier_task(task: str) -> bool:
    """Whether runs of the family `task` are image classifiers this module reads: those whose "predict" entry point
    is load_run_predictor (image classification, and families that train one, such as distillation)."""
    from core.tasks import list_tasks, task_spec
    if task not in list_tasks():
        return False
    spec = task_spec(task)
    return "predict" in spec.entry_points and spec.entry("predict") is load_run_predictor


def _run_label(run_id: str, which: str, config, best_value) -> str:
    from core.store import RunStore
    try:
        run = RunStore().get_run(run_id)
        name, summary = run.name, run.summary
    except LabError:
        name, summary = config.display_name(), {}
    metric = _metric_text(which, best_value, summary)
    return f"{name} · {which}" + (f" ({metric})" if metric else "")


def _metric_text(which: str, best_value, summary: dict) -> str:
    value = best_value if which == "best" else (summary.get("last") or {}).get("val_acc")
    if which == "best" and value is None:
        value = summary.get("best_val_acc")
    return f"val_acc {value:.3f}" if isinstance(value, (int, float)) else ""


# ---- pretrained ImageNet models ---------------------------------------------------------------------

def load_pretrained_predictor(name: str, device="cpu") -> Predictor:
    """A torchvision ImageNet classifier (1000 classes) with its weights' own preprocessing."""
    from core.models.imagenet import IMAGENET_MODELS, hub_checkpoint_dir

    if name not in IMAGENET_MODELS:
        raise ModelError(f"'{name}' is not a pretrained model here; choose one of: {', '.join(IMAGENET_MODELS)}")
    # The hub folder is part of the key: TORCH_HOME can change (tests, a user's settings).
    return _cached_pretrained(name, str(hub_checkpoint_dir()), str(inference_device(device)))


@functools.lru_cache(maxsize=2)
def _cached_pretrained(name: str, hub_dir: str, device: str) -> Predictor:
    from torchvision.models import get_model

    from core.models.imagenet import load_pretrained_state, weights_preprocessing

    pre = weights_preprocessing(name)
    model = get_model(name, weights=None)
    model.load_state_dict(load_pretrained_state(name))  # ModelError with the offline instructions
    model.to(torch.device(device)).eval()
    return Predictor(model=model, classes=pre["categories"], mean=pre["mean"], std=pre["std"],
                     image_size=int(pre["crop_size"][0]), channels=3, label=f"{name} (ImageNet)",
                     source="pretrained", resize_size=int(pre["resize_size"][0]), crop=True)


def pretrained_cached(name: str) -> bool:
    """Whether the weight file is already in torch hub's cache (no download needed)."""
    from core.models.imagenet import hub_checkpoint_dir, weights_for
    return (hub_checkpoint_dir() / weights_for(name).url.rsplit("/", 1)[-1]).is_file()


# ---- a Media source (core.inference.list_model_sources) -------------------------------------------

def load_source(source: dict, device="cpu") -> Predictor:
    """The predictor for one entry of `list_model_sources`."""
    if source.get("kind") == "run":
        return load_run_predictor(source["run_id"], source.get("which", "best"), device=device)
    if source.get("kind") == "pretrained":
        return load_pretrained_predictor(source["name"], device=device)
    raise LabError(f"unknown model source {source!r}")


def clear_caches() -> None:
    _cached_run_predictor.cache_clear()
    _cached_pretrained.cache_clear()


def classify_images(predictor, named_images, k: int = 5):
    """A table with one row per picture: file, top1, p1, ..., top{k}, p{k}, error (for a CSV download).

    `named_images` holds (name, image) pairs; an InputError in place of an image (as
    `images_from_zip` gives) becomes a row with empty predictions and the message under `error`.
    A model with fewer than `k` classes gets as many ranks as it has classes (no empty columns).
    """
    import pandas as pd

    good = [(index, image) for index, (_, image) in enumerate(named_images) if isinstance(image, Image.Image)]
    probs = predictor.predict([image for _, image in good]) if good else None  # (N_good, K)
    ranks = min(k, len(predictor.classes))
    top_p, top_i = (probs.topk(ranks, dim=1) if probs is not None else (None, None))  # (N_good, ranks)
    row_of = {index: row for row, (index, _) in enumerate(good)}

    records = []
    for index, (file_name, image) in enumerate(named_images):
        record: dict = {"file": file_name}
        row = row_of.get(index)
        for rank in range(ranks):
            has = row is not None
            record[f"top{rank + 1}"] = predictor.classes[int(top_i[row, rank])] if has else ""
            record[f"p{rank + 1}"] = float(top_p[row, rank]) if has else float("nan")
        record["error"] = "" if row is not None else str(image) if isinstance(image, Exception) else \
            f"{file_name} is not an image"
        records.append(record)
    columns = ["file"] + [f"{kind}{rank + 1}" for rank in range(ranks) for kind in ("top", "p")] + ["error"]
    return pd.DataFrame.from_records(records, columns=columns)


def classify_video(predictor, frames: list[tuple[float, Image.Image]], k: int = 3):
    """(per-frame table, clip summary) for sampled frames.

    per frame: time_s, top1, p1, then one column per top clip class (its probability in that frame),
    ready for a line chart over time. summary: class, mean_probability (over frames), frames_top1
    (frames where it is the most probable class); the k classes with the highest mean plus any
    class that wins a frame, sorted by mean probability.
    """
    import pandas as pd
    import torch

    if not frames:
        raise InputError("the video gave no frames to classify")
    probs = predictor.predict([image for _, image in frames])  # (N, K)
    best_p, best_i = probs.max(dim=1)  # (N,)
    mean = probs.mean(dim=0)  # (K,)
    wins = torch.bincount(best_i, minlength=probs.shape[1])  # (K,)
    top_clip = mean.topk(min(k, probs.shape[1])).indices.tolist()

    per_frame = pd.DataFrame({
        "time_s": [t for t, _ in frames],
        "top1": [predictor.classes[int(i)] for i in best_i],
        "p1": best_p.numpy().astype(float),
    })
    for index in top_clip:
        column = predictor.classes[index]
        if column in per_frame.columns:  # a class called "p1" must not overwrite the p1 column
            column = f"{column} (p)"
        per_frame[column] = probs[:, index].numpy().astype(float)

    shown = list(dict.fromkeys(top_clip + torch.nonzero(wins).flatten().tolist()))
    summary = pd.DataFrame({
        "class": [predictor.classes[i] for i in shown],
        "mean_probability": [float(mean[i]) for i in shown],
        "frames_top1": [int(wins[i]) for i in shown],
    }).sort_values("mean_probability", ascending=False, kind="stable").reset_index(drop=True)
    return per_frame, summary
