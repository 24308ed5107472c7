"""Using a trained autoencoder: reconstructions of uploads, latent codes of the validation set, walks over
the code space and (for a VAE) samples from the prior. Every function takes a RunModel
(core.tasks.checkpoints.load_run_model) and returns plain arrays or PNG bytes for the pages to draw.
Images here are float tensors (N, C, H, W) in [0, 1] or uint8 arrays (H, W) for grey, (H, W, 3) for colour.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.data.images import grid_png, to_arrays
from core.errors import InputError
from core.tasks import check_input_int

MAX_COUNT = 256  # images per grid of prior samples
MAX_STEPS = 32  # interpolation steps, latent-walk rows and columns
MAX_SEED = 2**31 - 1
MIN_UPLOAD_SIDE = 4  # pixels: smaller pictures hold nothing to reconstruct


# ---- autoencoders: inputs prepared exactly like training -----------------------------------------

def prepare_image(run_model, image, invert: bool | str = "auto") -> torch.Tensor:
    """A PIL image or uint8 array -> (1, C, H, W) in [0, 1] at the run's size and channels.

    Squashed to the training size with Pillow's bilinear resize (as folder data sets are decoded);
    grey runs take the picture's luminance. `invert` flips grey values: "auto" does so when the
    picture's brightness is on the other side of middle grey from the training images' (white
    digits on black in the training set, a black digit on white paper uploaded)."""
    from PIL import Image

    pre = run_model.metadata["preprocessing"]
    size, channels = pre["image_size"], pre["channels"]
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
            raise InputError(f"expected a uint8 picture of shape (H, W), (H, W, 3) or (H, W, 4), got "
                             f"{image.dtype} {tuple(image.shape)}")
        image = Image.fromarray(image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image)
    if not isinstance(image, Image.Image):
        raise InputError(f"expected a picture, got {type(image).__name__}")
    if min(image.size) < MIN_UPLOAD_SIDE:
        raise InputError(f"the picture is {image.size[0]}x{image.size[1]} pixels; it needs at least "
                         f"{MIN_UPLOAD_SIDE} pixels on each side")
    picture = image.convert("L" if channels == 1 else "RGB")
    if picture.size != (size, size):
        picture = picture.resize((size, size), Image.Resampling.BILINEAR)
    x = torch.from_numpy(np.asarray(picture, dtype=np.uint8).copy()).float() / 255.0
    x = x[None, None] if channels == 1 else x.permute(2, 0, 1)[None]  # (1, C, H, W)
    if invert == "auto":
        data_mean = run_model.metadata.get("pixel_mean")
        invert = channels == 1 and data_mean is not None and (float(x.mean()) - 0.5) * (data_mean - 0.5) < 0
    return 1.0 - x if invert else x


def _normalise(run_model, x01: torch.Tensor) -> torch.Tensor:
    pre = run_model.metadata["preprocessing"]
    mean = torch.tensor(pre["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(pre["std"]).view(1, -1, 1, 1)
    return ((x01 - mean) / std).to(next(run_model.model.parameters()).device)


@torch.inference_mode()
def reconstruct(run_model, image, invert: bool | str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """(the input as the model sees it, its reconstruction), both uint8 at the run's size."""
    run_model.require("autoencoder")
    x = prepare_image(run_model, image, invert)  # (1, C, H, W) in [0, 1]
    logits, _, _ = run_model.model(_normalise(run_model, x))
    return to_arrays(x)[0], to_arrays(torch.sigmoid(logits.float()))[0]


def reconstruct_upload(run_model, data: bytes, name: str, invert: bool | str = "auto"):
    """Uploaded bytes -> (input, reconstruction); InputError for anything that is not a usable picture."""
    from core.data.media import open_image
    return reconstruct(run_model, open_image(data, name), invert)


@torch.inference_mode()
def decode(run_model, z: torch.Tensor) -> torch.Tensor:
    """Latent codes (N, L) -> images (N, C, H, W) in [0, 1]."""
    run_model.require("autoencoder")
    model = run_model.model
    if z.dim() != 2 or z.shape[1] != model.latent_dim:
        raise InputError(f"latent codes must have shape (N, {model.latent_dim}), got {tuple(z.shape)}")
    return torch.sigmoid(model.decode(z.float().to(next(model.parameters()).device)).float())


@dataclass
class LatentCodes:
    latents: np.ndarray  # (N, L) the encoder's means
    coords: np.ndarray  # (N, 2) what a scatter shows: the code itself (L = 2) or its first two principal components
    labels: np.ndarray  # (N,) class indices into `classes`
    classes: list[str]
    axes: tuple[str, str]  # axis titles
    centre: np.ndarray  # (L,) the origin of the plane the coords live in
    directions: np.ndarray  # (2, L) unit vectors spanning that plane


@torch.inference_mode()
def encode_validation(run_model, limit: int = 2000) -> LatentCodes:
    """Encode (up to `limit` of) the run's validation images: codes, 2-D coordinates and labels."""
    from core.data import load_dataset

    run_model.require("autoencoder")
    limit = check_input_int("limit", limit, 1, 1_000_000)
    config, model = run_model.config, run_model.model
    splits = load_dataset(config.data, seed=config.seed)
    x, y = splits.val_x[:limit], splits.val_y[:limit]
    codes = []
    for start in range(0, len(x), 512):
        batch = _normalise(run_model, x[start:start + 512].float() / 255.0)
        codes.append(model.encode(batch)[0].float().cpu())  # (b, L) means
    latents = torch.cat(codes)  # (N, L)
    if latents.shape[1] == 2:  # the code itself
        centre, directions, axes = torch.zeros(2), torch.eye(2), ("z1", "z2")
    elif latents.shape[1] == 1:  # a line: the code against nothing
        centre, directions, axes = torch.zeros(1), torch.tensor([[1.0], [0.0]]), ("z1", "")
    else:  # the plane of largest spread: first two right singular vectors of the centred codes
        centre = latents.mean(0)
        _, _, vh = torch.linalg.svd(latents - centre, full_matrices=False)
        directions, axes = vh[:2], ("PC1", "PC2")
    coords = (latents - centre) @ directions.T  # (N, 2)
    return LatentCodes(latents.numpy(), coords.numpy(), y.numpy(), list(splits.classes), axes, centre.numpy(),
                       directions.numpy())


@dataclass
class LatentWalk:
    png: bytes  # the grid: columns along the first axis, rows along the second (top = high)
    xs: list[float]  # coordinates of the columns
    ys: list[float]  # coordinates of the rows, top to bottom
    axes: tuple[str, str]


def latent_walk(run_model, steps: int = 9, codes: LatentCodes | None = None) -> LatentWalk:
    """Decode a steps x steps grid over a 2-D plane of the latent space.

    A VAE with a 2-D code walks its prior, -2..2 on both axes (where the KL term pulled the codes);
    any other model walks the plane of its validation codes between their 2nd and 98th percentiles
    (a plain autoencoder's codes can sit anywhere, so the prior says nothing about them)."""
    run_model.require("autoencoder")
    steps = check_input_int("steps", steps, 2, MAX_STEPS)
    model = run_model.model
    if model.variational and model.latent_dim == 2:
        centre, directions, axes = np.zeros(2), np.eye(2), ("z1", "z2")
        lows, highs = np.array([-2.0, -2.0]), np.array([2.0, 2.0])
    else:
        codes = codes or encode_validation(run_model)
        centre, directions, axes = codes.centre, codes.directions, codes.axes
        lows, highs = np.percentile(codes.coords, 2, axis=0), np.percentile(codes.coords, 98, axis=0)
    xs = np.linspace(lows[0], highs[0], steps)
    ys = np.linspace(highs[1], lows[1], steps)  # top row = high values, as on a chart
    plane = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)  # (steps*steps, 2) row by row
    z = torch.from_numpy(centre[None] + plane @ directions).float()  # (steps*steps, L)
    return LatentWalk(grid_png(decode(run_model, z), nrow=steps, padding=1), xs.tolist(), ys.tolist(), axes)


def prior_samples(run_model, seed: int = 0, count: int = 16) -> torch.Tensor:
    """A VAE's decodes of codes drawn from its prior N(0, I) (count, C, H, W) in [0, 1]."""
    run_model.require("autoencoder")
    seed, count = check_input_int("seed", seed, 0, MAX_SEED), check_input_int("count", count, 1, MAX_COUNT)
    if not run_model.model.variational:
        raise InputError("only a VAE has a prior to sample from; a plain autoencoder's codes fill no known region")
    z = torch.randn(count, run_model.model.latent_dim, generator=torch.Generator().manual_seed(seed))
    return decode(run_model, z)
