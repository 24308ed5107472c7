"""Where and when a video model looked: attributions over one window of frames, through Captum (Kokhlikyan et
al. 2020).

For a window x of shape (T, C, S, S) and the class score y_c (a logit):

    saliency (Simonyan, Vedaldi & Zisserman 2013): |dy_c/dx|, the largest over colour channels
    integrated gradients (Sundararajan, Taly & Yan 2017): (x - x0) * mean over the path of dy_c/dx, with the
        baseline x0 = 0 in normalised units (the training set's mean colour), summed |.| over channels

Both give one map per frame, (T, S, S). Scaled by one common maximum, the maps stay comparable across frames, and
the share of the total attribution that falls on each frame says which moments the verdict rests on: a
single-frame model looks only at the middle frame, late fusion at the first and last, slow fusion at them all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.errors import InputError

METHODS = ("saliency", "ig")
IG_STEPS = 32


@dataclass
class WindowExplanation:
    method: str
    class_index: int
    class_name: str
    maps: np.ndarray  # (T, S, S) float32 in [0, 1], one scale for the whole window
    frame_share: np.ndarray  # (T,) float64, each frame's share of the total attribution (sums to 1, or all 0)


def explain_window(run_model, frames: torch.Tensor, method: str = "saliency",
                   class_index: int | None = None) -> WindowExplanation:
    """Attributions of a video run (core.tasks.checkpoints.load_run_model) for one window `frames` (T, 3, S, S)
    uint8, as core.tasks.video.clips gives it, for `class_index` (default: the model's top class)."""
    from captum.attr import IntegratedGradients, Saliency

    if run_model.task != "video":
        raise InputError(f"run {run_model.run_id} is a '{run_model.task}' run, not a video classifier")
    if method not in METHODS:
        raise InputError(f"'{method}' is not a way to explain a video model; choose one of: {', '.join(METHODS)}")
    pre, classes = run_model.metadata["preprocessing"], [str(c) for c in run_model.metadata["classes"]]
    if frames.dim() != 4 or frames.shape[0] != int(pre["frames"]):
        raise InputError(f"a window of {pre['frames']} frames (T, 3, S, S) is needed, got shape {tuple(frames.shape)}")
    model = run_model.model
    device = next(model.parameters()).device
    mean = torch.tensor(pre["mean"], dtype=torch.float32, device=device).view(1, 1, -1, 1, 1)
    std = torch.tensor(pre["std"], dtype=torch.float32, device=device).view(1, 1, -1, 1, 1)
    x = (frames[None].to(device).float() / 255 - mean) / std  # (1, T, C, S, S)
    was_training = model.training
    model.eval()
    try:
        if class_index is None:
            with torch.inference_mode():
                class_index = int(model(x).argmax(dim=1))
        if not 0 <= class_index < len(classes):
            raise InputError(f"class {class_index} does not exist; the model has {len(classes)} classes")
        x = x.clone().requires_grad_()
        if method == "saliency":
            raw = Saliency(model).attribute(x, target=class_index, abs=True).amax(dim=2)  # (1, T, S, S)
        else:
            raw = IntegratedGradients(model).attribute(x, baselines=torch.zeros_like(x), target=class_index,
                                                       n_steps=IG_STEPS, internal_batch_size=IG_STEPS)
            raw = raw.abs().sum(dim=2)  # (1, T, S, S)
    finally:
        model.train(was_training)
    raw = raw[0].detach().float().cpu()  # (T, S, S)
    total = float(raw.sum())
    share = (raw.sum(dim=(1, 2)) / total).double().numpy() if total > 0 else np.zeros(raw.shape[0])
    peak = float(raw.max())
    maps = (raw / peak).numpy() if peak > 0 else np.zeros(raw.shape, dtype=np.float32)
    return WindowExplanation(method=method, class_index=class_index, class_name=classes[class_index],
                             maps=maps.astype(np.float32), frame_share=share)
