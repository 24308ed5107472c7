"""DCGAN (Radford, Metz & Chintala, 2015): a generator and a discriminator in one module.

Generator: noise z (B, latent_dim) -> a transposed convolution from 1x1 to s0 x s0, then stride-2
transposed convolutions that double the size up to the image (BatchNorm + ReLU between, tanh out,
so pixels land in [-1, 1]). Discriminator: its mirror, stride-2 convolutions with LeakyReLU(0.2)
(BatchNorm on all but the first), no pooling, and one convolution over the last s0 x s0 map to a
single logit. Weights start from N(0, 0.02) as in the paper.

How both players train in the engine's ONE backward and ONE optimiser step per batch
(core.tasks.gan.GANTask.training_step):

    loss = D loss on (real, G(z).detach())                      -> gradients for D only
         + G's non-saturating loss -log D(G(z)), computed through D with its parameters detached
           (torch.func.functional_call)                          -> gradients for G only

so one Adam step (beta1 0.5, as the paper recommends) moves both players at once from the same
point: simultaneous gradient descent, rather than the paper's alternating D-then-G updates (where
G's step sees the D just updated). It keeps one model, one optimiser and one checkpoint. Measured
against the alternating scheme with two Adam optimisers, same model, data, rate and steps (fixed
random-feature Fréchet distance, lower is better): digits at 28px after 660 steps 0.063 vs 0.078;
shapes at 32px after 1,000 steps 0.37 vs 0.25 (one seed each; GAN runs vary by about this much).
Both players share the learning rate (no two-timescale update).

Both halves live in ONE nn.Module (`.generator`, `.discriminator`) so the engine's single model,
optimiser and checkpoint cover the whole game; `forward(z)` is the generator.
"""

from __future__ import annotations

import torch
from torch import nn

from core.models import register_model
from core.options import Option

OPTIONS = {
    "latent_dim": Option(100, "Length of the noise vector z the generator draws images from "
                              "(DCGAN used 100)", low=2, high=512, label="latent size"),
    "width": Option(64, "Channels of the discriminator's first layer (and the generator's last hidden one); "
                        "each stride-2 stage doubles or halves it. 32 is quick on a CPU", low=4, high=512,
                    label="base width"),
}

MAX_STAGES = 4  # 4 doublings from 4x4 reach 64x64; beyond that a DCGAN of this size needs more layers


def stages_for(image_size: int) -> int:
    """Stride-2 stages between the image and the smallest map: halve while even and still >= 4 pixels.

    28 -> 14 -> 7 (2 stages, 7x7 start), 32 -> 16 -> 8 -> 4 (3 stages), 8 -> 4 (1 stage).
    """
    stages, size = 0, int(image_size)
    while stages < MAX_STAGES and size % 2 == 0 and size // 2 >= 4:
        size //= 2
        stages += 1
    return stages


def _init_weights(module) -> None:
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class Generator(nn.Module):
    def __init__(self, latent_dim: int, channels: int, image_size: int, width: int):
        super().__init__()
        n = stages_for(image_size)
        start = image_size >> n  # s0: the first feature map's side
        widths = [width * 2 ** i for i in reversed(range(n))]  # n=3: [4w, 2w, w]
        layers = [nn.ConvTranspose2d(latent_dim, widths[0], start, 1, 0, bias=False),  # (B, 4w, s0, s0)
                  nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True)]
        for c_in, c_out in zip(widths, widths[1:]):  # each doubles the side
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out),
                       nn.ReLU(inplace=True)]
        layers += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1), nn.Tanh()]  # (B, C, H, W) in [-1, 1]
        self.net = nn.Sequential(*layers)
        self.latent_dim = latent_dim

    def forward(self, z):  # z: (B, latent_dim)
        return self.net(z.view(z.shape[0], self.latent_dim, 1, 1))


class Discriminator(nn.Module):
    def __init__(self, channels: int, image_size: int, width: int):
        super().__init__()
        n = stages_for(image_size)
        end = image_size >> n
        widths = [width * 2 ** i for i in range(n)]  # n=3: [w, 2w, 4w]
        # no BatchNorm on the first layer (the paper: it made samples oscillate)
        layers = [nn.Conv2d(channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        for c_in, c_out in zip(widths, widths[1:]):  # each halves the side
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out),
                       nn.LeakyReLU(0.2, inplace=True)]
        layers += [nn.Conv2d(widths[-1], 1, end, 1, 0)]  # (B, 1, 1, 1): one logit per image
        self.net = nn.Sequential(*layers)

    def forward(self, x):  # x: (B, C, H, W) in [-1, 1]
        return self.net(x).flatten()  # (B,) logits: > 0 means "real"


class DCGAN(nn.Module):
    def __init__(self, *, channels: int, image_size: int, latent_dim: int, width: int):
        super().__init__()
        self.channels, self.image_size, self.latent_dim = channels, image_size, latent_dim
        self.generator = Generator(latent_dim, channels, image_size, width)
        self.discriminator = Discriminator(channels, image_size, width)
        self.apply(_init_weights)

    def forward(self, z):  # (B, latent_dim) -> (B, C, H, W) in [-1, 1]
        return self.generator(z)

    def sample_noise(self, count: int, seed: int | None = None) -> torch.Tensor:
        """(count, latent_dim) standard normal noise on the model's device, drawn on the CPU from `seed`
        (the same seed gives the same noise on every device) or from the global generator."""
        generator = torch.Generator().manual_seed(int(seed)) if seed is not None else None
        return torch.randn(count, self.latent_dim, generator=generator).to(next(self.parameters()).device)


@register_model("dcgan", description="DCGAN: transposed-conv generator and strided-conv discriminator "
                                      "(Radford et al., 2015), for 28-64px grey or colour images",
                family="generative", min_image_size=8, task="gan", options=OPTIONS)
def build_dcgan(*, in_channels: int, image_size: int, latent_dim: int = 100, width: int = 64, **_):
    """A DCGAN for (in_channels, image_size, image_size) images; image_size must give one stride-2 stage."""
    from core.errors import ConfigError
    if stages_for(image_size) < 1:
        raise ConfigError(f"data.image_size: dcgan needs an even image size of at least 8px, got {image_size}px; "
                          "28 or 32 work best")
    return DCGAN(channels=in_channels, image_size=image_size, latent_dim=latent_dim, width=width)
