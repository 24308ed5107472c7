"""Why the model chose a class: four attribution methods through Captum (Kokhlikyan et al. 2020, arXiv:2009.07896).

Every method takes a predictor (predictor.py) and a picture and answers with a heat map (H, W) in [0, 1] at the
model's input size, over exactly the pixels the model saw (`predictor.view(image)`):

- "gradcam": Grad-CAM (Selvaraju et al. 2016, arXiv:1610.02391) on the layer `find_target_layer` picks: the class
  score's gradient, averaged per channel, weights the rectified feature maps; coarse (the layer's h x w) but
  class-specific. Convolutional models only.
- "ig": integrated gradients (Sundararajan et al. 2017, arXiv:1703.01365): the gradient averaged along the straight
  path from a baseline (zeros after normalisation, i.e. the training set's mean colour) to the picture, times the
  difference. The attributions add up to f(x) - f(baseline) (completeness).
- "saliency": |dy_c/dx|, the largest over the colour channels (Simonyan et al. 2013, arXiv:1312.6034).
- "occlusion": how much the class score drops when a square (1/8 of the side, moved by half of that) is covered
  with the mean colour (Zeiler & Fergus 2013, arXiv:1311.2901). Model-agnostic, one forward pass per position.

No method writes a parameter's `.grad` (Captum differentiates with `torch.autograd.grad`), and Grad-CAM's forward
hook sits on a private copy of the module tree that shares the weights: the shared, cached predictor other sessions
use at the same moment never sees it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from core.errors import InputError, LabError
from core.tasks.classification.gradcam import find_target_layer, overlay

METHODS = ("gradcam", "ig", "saliency", "occlusion")
METHOD_NAMES = {"gradcam": "Grad-CAM", "ig": "integrated gradients", "saliency": "saliency", "occlusion": "occlusion"}
IG_STEPS = 32  # the Gauss-Legendre rule Captum uses is already close to exact at 32 points on these models
IG_BATCH = 16  # path points per forward pass: bounds the memory of a 224 px model to a few hundred MB
OCCLUSION_BATCH = 32  # occluded copies per forward pass


def check_method(method: str) -> str:
    if method not in METHODS:
        raise InputError(f"unknown explanation method '{method}'; choose one of: {', '.join(METHODS)}")
    return method


def private_copy(model: nn.Module) -> nn.Module:
    """A copy of the module tree that shares every parameter and buffer (no weights are copied): hooks registered on
    it are seen by this thread's forward passes only."""
    shared = {id(tensor): tensor for tensor in [*model.parameters(), *model.buffers()]}
    return copy.deepcopy(model, memo=shared)


NO_GRADIENTS = "this method needs gradients, which an int8 model does not have: use occlusion, or explain the run's float model"


def _is_quantised(model: nn.Module) -> bool:
    """True for a model with int8 layers (a compressed variant, core.toolkit.compress): no gradient flows through."""
    return any(type(module).__module__.startswith("torch.ao.nn.quantized") for module in model.modules())


@dataclass
class Attribution:
    values: torch.Tensor  # (C, H, W) for ig, saliency and occlusion; (1, h, w) for gradcam (the layer's size)
    class_index: int
    inputs: torch.Tensor  # (1, C, H, W): the normalised picture the model saw


def attribute(predictor, image: Image.Image, method: str = "gradcam", class_index: int | None = None, *,
              steps: int = IG_STEPS) -> Attribution:
    """The method's raw attributions for `class_index` (default: the predicted class), before any scaling."""
    from captum.attr import IntegratedGradients, LayerGradCam, Occlusion, Saliency

    check_method(method)
    model = predictor.model
    if method != "occlusion" and _is_quantised(model):
        raise LabError(NO_GRADIENTS)
    if method == "gradcam":
        model = private_copy(model)
        name, _ = find_target_layer(model)  # LabError for a model without convolutions
    x = predictor.prepare(image).unsqueeze(0).to(predictor.device)  # (1, C, H, W)
    # inference_mode(False): callers (a Streamlit page) may sit inside inference mode.
    with torch.inference_mode(False), torch.enable_grad():
        x = x.clone()
        with torch.no_grad():
            logits = model(x)  # (1, K)
        if class_index is None:
            class_index = int(logits.argmax(dim=1))
        if not 0 <= class_index < logits.shape[1]:
            raise LabError(f"class index {class_index} is out of range; the model has {logits.shape[1]} classes")
        if method == "gradcam":
            values = LayerGradCam(model, model.get_submodule(name)).attribute(x, target=class_index,
                                                                               relu_attributions=True)
            if values.dim() != 4:
                raise LabError("Grad-CAM could not see the convolutional layer's output for this model")
        elif method == "ig":
            values = IntegratedGradients(model).attribute(x, baselines=torch.zeros_like(x), target=class_index,
                                                          n_steps=steps, internal_batch_size=IG_BATCH)
        elif method == "saliency":
            values = Saliency(model).attribute(x.requires_grad_(), target=class_index, abs=True)  # (1, C, H, W)
        else:
            side = x.shape[-1]
            window = max(1, round(side / 8))
            stride = max(1, window // 2)
            values = Occlusion(model).attribute(x, sliding_window_shapes=(x.shape[1], window, window),
                                                strides=(x.shape[1], stride, stride), baselines=0.0,
                                                target=class_index, perturbations_per_eval=OCCLUSION_BATCH)
    return Attribution(values=values.detach()[0].float(), class_index=class_index, inputs=x.detach())


def to_heat(attribution: Attribution, method: str) -> np.ndarray:
    """Raw attributions -> (H, W) float32 in [0, 1] at the input size; all zero when nothing speaks for the class."""
    from captum.attr import LayerAttribution

    values = attribution.values
    if method == "gradcam":  # (1, h, w) -> (H, W), bilinear as in the paper
        size = tuple(attribution.inputs.shape[-2:])
        heat = LayerAttribution.interpolate(values[None], size, "bilinear")[0, 0]
    elif method == "ig":
        heat = values.abs().sum(dim=0)  # evidence for and against both count as "looked here"
    elif method == "saliency":
        heat = values.max(dim=0).values
    else:
        heat = values.mean(dim=0).clamp(min=0)  # a drop in the score when covered: the patch helped the class
    top = float(heat.max())
    heat = heat / top if top > 0 else torch.zeros_like(heat)
    return heat.clamp(0.0, 1.0).cpu().numpy().astype(np.float32)


def explain(predictor, image: Image.Image, method: str = "gradcam", class_index: int | None = None) -> np.ndarray:
    """Heat map (H, W) float32 in [0, 1] at the model's input size: where the evidence for the class lies."""
    return to_heat(attribute(predictor, image, method, class_index), method)


# ---- the CLI's entry: a run, a picture file, an overlay PNG ---------------------------------------------------

@dataclass
class Explained:
    run_id: str
    which: str
    method: str
    label: str  # the predicted class
    probability: float
    path: Path


def read_image(path: str | Path) -> Image.Image:
    """A picture file decoded the way uploads are (core.data.media: formats, size and pixel limits)."""
    from core.data.media import open_image

    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a folder, not an image file") from None
    except OSError as exc:
        raise InputError(f"{path} could not be read ({exc.strerror or exc})") from None
    return open_image(data, path.name)


def explain_run(run_id: str, image_path: str | Path, method: str, out: str | Path, which: str = "best") -> Explained:
    """Explain a run's prediction for one picture file and write the overlay PNG to `out`; nothing is written when
    anything is wrong (unknown run, unreadable picture, unknown method)."""
    from core.paths import atomic_write
    from core.tasks.classification.predictor import load_run_predictor

    check_method(method)
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise InputError(f"{out}: the overlay is written as PNG; give a file name ending in .png")
    predictor = load_run_predictor(run_id, which)
    image = read_image(image_path)
    heat = explain(predictor, image, method)
    label, probability = predictor.top_k(image, k=1)[0]
    shown = overlay(predictor.view(image), heat)
    atomic_write(out, lambda handle: shown.save(handle, format="PNG"))
    return Explained(run_id=run_id, which=which, method=method, label=label, probability=probability, path=out)
