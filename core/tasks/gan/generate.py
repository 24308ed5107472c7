"""Using a trained GAN: image grids from seeds and interpolations between two seeds' noise. Every function
takes a RunModel (core.tasks.checkpoints.load_run_model) and returns images as float tensors (N, C, H, W)
in [0, 1] or PNG bytes for the pages to draw.
"""

from __future__ import annotations

import math

import torch

from core.data.images import grid_png
from core.tasks import check_input_int

MAX_COUNT = 256  # images per generated grid
MAX_STEPS = 32  # interpolation steps, latent-walk rows and columns
MAX_SEED = 2**31 - 1


# ---- GAN ----------------------------------------------------------------------------------------

@torch.inference_mode()
def generate(run_model, seed: int = 0, count: int = 16) -> torch.Tensor:
    """`count` images (count, C, H, W) in [0, 1] from noise drawn with `seed` (same seed, same images)."""
    run_model.require("gan")
    seed, count = check_input_int("seed", seed, 0, MAX_SEED), check_input_int("count", count, 1, MAX_COUNT)
    model = run_model.model
    return (model.generator(model.sample_noise(count, seed=seed)).float() + 1) / 2


def generate_grid(run_model, seed: int = 0, count: int = 16, nrow: int | None = None) -> bytes:
    images = generate(run_model, seed, count)
    return grid_png(images, nrow=nrow or max(1, math.ceil(math.sqrt(count))))


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of vectors a, b (L,) at fractions t (S,) -> (S, L) (White, 2016).

    Gaussian noise vectors live near a sphere; a straight line between two of them passes through
    improbably short vectors in the middle, which a generator has rarely seen."""
    cos = torch.dot(a, b) / (a.norm() * b.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    if float(omega) < 1e-4:  # nearly parallel: a straight line is the same thing
        return a + t[:, None] * (b - a)
    sin = torch.sin(omega)
    return (torch.sin((1 - t) * omega)[:, None] * a + torch.sin(t * omega)[:, None] * b) / sin


@torch.inference_mode()
def interpolate(run_model, seed_a: int, seed_b: int, steps: int = 8, spherical: bool = True) -> torch.Tensor:
    """Images (steps, C, H, W) in [0, 1] along the path from seed_a's noise to seed_b's."""
    run_model.require("gan")
    seed_a, seed_b = check_input_int("seed_a", seed_a, 0, MAX_SEED), check_input_int("seed_b", seed_b, 0, MAX_SEED)
    steps = check_input_int("steps", steps, 2, MAX_STEPS)
    model = run_model.model
    a, b = model.sample_noise(1, seed=seed_a)[0], model.sample_noise(1, seed=seed_b)[0]  # (L,)
    t = torch.linspace(0, 1, steps, device=a.device)
    z = slerp(a, b, t) if spherical else a + t[:, None] * (b - a)  # (steps, L)
    return (model.generator(z).float() + 1) / 2
