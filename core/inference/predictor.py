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

from core.config import task_of
from core.data.images import to_rgb
from core.engine.checkpoint import BEST, LAST
from core.errors import CheckpointError, LabError, ModelError, RunNotFound
from core.paths import run_dir
from core.store.records import watched_metric
from core.tasks.checkpoints import existing_checkpoint, inference_device, load_run_model

PRETRAINED_CHOICES = ("resnet18", "resnet50", "mobilenet_v3_small", "efficientnet_b0")
SOURCE_STATUSES = ("completed", "cancelled", "interrupted")  # runs that have stopped changing


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
    try:
        classes = [str(c) for c in run_model.metadata["classes"]]
        pre = run_model.metadata["preprocessing"]
        size, channels = int(pre["image_size"]), int(pre["channels"])
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"{Path(path).name} of run {run_id} lacks its classes or preprocessing ({exc})") from None
    if len(pre.get("mean", [])) != channels or "frames" in pre:  # a clip model, say: not one picture in
        raise CheckpointError(f"run {run_id} was trained for the task '{run_model.task}'; its model does not "
                              "classify single pictures")
    return Predictor(model=run_model.model, classes=classes, mean=[float(m) for m in pre["mean"]],
                     std=[float(s) for s in pre["std"]], image_size=size, channels=channels,
                     label=_run_label(run_id, which, run_model.config, run_model.best_value),
                     source="run", run_id=run_id, which=which, config=run_model.config.to_dict(),
                     epoch=run_model.epoch)


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


# ---- what can be picked ------------------------------------------------------------------------------

def list_model_sources(store=None) -> list[dict]:
    """Every stopped run with a checkpoint (newest first), then the pretrained choices.

    A run is listed with its best.pt; its last.pt is listed too when it is a different epoch
    (or when there is no best.pt), so the list never shows the same weights twice.
    """
    if store is None:
        from core.store import RunStore
        store = RunStore()
    sources: list[dict] = []
    runs = store.list_runs()
    details = store.get_runs()  # one query for every run's summary
    for row in runs.itertuples(index=False):
        if row.status not in SOURCE_STATUSES:
            continue
        try:
            folder = run_dir(row.id)
        except RunNotFound:
            continue
        has_best, has_last = (folder / BEST).is_file(), (folder / LAST).is_file()
        if not (has_best or has_last):
            continue
        summary = details[row.id].summary if row.id in details else {}
        task = task_of(details[row.id].config if row.id in details else {})
        metric_name = watched_metric(summary)
        best_is_last = summary.get("best_epoch") == summary.get("epochs_done")
        for which, present in (("best", has_best), ("last", has_last and not (has_best and best_is_last))):
            if not present:
                continue
            value = (summary.get(f"best_{metric_name}") if which == "best"
                     else (summary.get("last") or {}).get(metric_name))
            metric = float(value) if isinstance(value, (int, float)) else None
            text = f" ({metric_name} {metric:.3f})" if metric is not None else ""
            sources.append({"kind": "run", "task": task, "run_id": row.id, "which": which, "metric": metric,
                            "dataset": row.dataset, "model": row.model, "status": row.status,
                            "label": f"{row.name} · {which}{text} · {row.id}"})
    for name in PRETRAINED_CHOICES:
        sources.append({"kind": "pretrained", "task": "classification", "name": name, "label": f"{name} (ImageNet)",
                        "cached": pretrained_cached(name)})
    return sources


def load_source(source: dict, device="cpu") -> Predictor:
    """The predictor for one entry of `list_model_sources`."""
    if source.get("kind") == "run":
        return load_run_predictor(source["run_id"], source.get("which", "best"), device=device)
    if source.get("kind") == "pretrained":
        return load_pretrained_predictor(source["name"], device=device)
    raise LabError(f"unknown model source {source!r}")


def clear_caches() -> None:
    from core.tasks.checkpoints import clear_cache
    clear_cache()
    _cached_run_predictor.cache_clear()
    _cached_pretrained.cache_clear()
