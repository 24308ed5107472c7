"""Autoencoders and VAEs: reconstruct the input through a small code.

Pixels are scaled to [0, 1] (mean 0, std 1 in DeviceBatches) and the decoder gives logits. The
reconstruction loss is per IMAGE, summed over its pixels and channels (then averaged over the batch),
so with the VAE it is the negative log-likelihood of the ELBO in nats:
  "bce" (default)  binary cross-entropy of sigmoid(logits) against the pixel values: a Bernoulli
                   decoder, as Kingma & Welling used for MNIST (grey values act as soft targets, so
                   its minimum is above 0);
  "mse"            squared error of sigmoid(logits), summed over pixels.
The VAE adds KL(q(z|x) || N(0, I)) = -1/2 sum(1 + logvar - mu^2 - exp(logvar)) per image, weighted
by beta (1 gives the ELBO; > 1 the beta-VAE of Higgins et al., 2017): loss = recon + beta * kl.

Logged: train_loss, train_recon (and train_kl for the VAE); per epoch val_loss, val_recon (val_kl),
where the VAE decodes a sampled code z = mu + sigma * eps with a fixed eps, so val_loss is the
(negative) ELBO with one sample, the same every epoch. Best checkpoint: lowest val_loss.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
from torch.nn import functional as F

from core.options import Option

OPTIONS = {
    "loss": Option("bce", "Reconstruction loss per image: binary cross-entropy (a Bernoulli decoder) or "
                          "squared error, summed over pixels", choices=("bce", "mse"), label="reconstruction loss"),
    "beta": Option(1.0, "Weight of the VAE's KL term: 1 is the ELBO; more gives smoother, blurrier codes "
                        "(beta-VAE); plain autoencoders ignore it", low=0.0, high=100.0),
    "sample_every": Option(100, "Steps between the reconstruction grids of a fixed validation batch",
                           low=1, high=1_000_000, label="sample every (steps)"),
}
SAMPLE_COUNT = 16  # validation images in the reconstruction grid
EVAL_NOISE_SEED = 11
PRIOR_NOISE_SEED = 12
PRIOR_COUNT = 32  # codes from N(0, I) the VAE's "prior" grid decodes


def reconstruction_loss(logits: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-image loss (B,) summed over (C, H, W); target in [0, 1]."""
    if kind == "bce":
        per_pixel = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    else:
        per_pixel = (torch.sigmoid(logits) - target).square()
    return per_pixel.flatten(1).sum(1)


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per image (B,), summed over the code's dimensions."""
    return -0.5 * (1 + logvar - mu.square() - logvar.exp()).sum(1)


class AutoencoderTask:
    name = "autoencoder"
    best_metric = "val_loss"
    best_mode = "min"

    def __init__(self, *, variational: bool, loss: str = "bce", beta: float = 1.0, sample_every: int = 100,
                 sample_batch: torch.Tensor | None = None, latent_dim: int = 2):
        self.variational, self.loss_kind, self.beta = variational, loss, float(beta)
        self.sample_every = int(sample_every)
        self.sample_batch = sample_batch  # (16, C, H, W) in [0, 1], fixed validation images
        g = torch.Generator().manual_seed(PRIOR_NOISE_SEED)
        self.prior_noise = torch.randn(PRIOR_COUNT, latent_dim, generator=g)  # (32, L): fixed codes to decode

    def _losses(self, model, x, noise=None):
        x = x.float()
        logits, mu, logvar = model(x, noise=noise) if noise is not None else model(x)
        recon = reconstruction_loss(logits.float(), x, self.loss_kind)  # (B,)
        kl = kl_to_standard_normal(mu.float(), logvar.float()) if self.variational else None
        return recon, kl

    def training_step(self, model, batch):
        x, _ = batch  # (B, C, H, W) in [0, 1]
        recon, kl = self._losses(model, x)
        loss = recon.mean() + (self.beta * kl.mean() if kl is not None else 0.0)
        with torch.no_grad():
            sums = {"loss": loss.detach().float() * len(x), "recon": recon.detach().sum(),
                    "count": torch.tensor(len(x), device=x.device)}
            if kl is not None:
                sums["kl"] = kl.detach().sum()
        return loss, sums

    def summarize(self, sums):
        count = max(float(sums["count"]), 1.0)
        return {key: float(sums[key]) / count for key in ("loss", "recon", "kl") if key in sums}

    @torch.inference_mode()
    def evaluate(self, model, batches, autocast=None):
        was_training = model.training
        model.eval()
        g = torch.Generator().manual_seed(EVAL_NOISE_SEED)  # the same code samples every epoch
        recon_sum = kl_sum = 0.0
        count = 0
        try:
            for x, _ in batches.epoch(0) if hasattr(batches, "epoch") else batches:
                noise = None
                if self.variational:
                    latent = model.latent_dim
                    noise = torch.randn(len(x), latent, generator=g).to(x.device)
                with autocast() if autocast else nullcontext():
                    recon, kl = self._losses(model, x, noise)
                recon_sum += float(recon.sum())
                kl_sum += float(kl.sum()) if kl is not None else 0.0
                count += len(x)
        finally:
            model.train(was_training)
        if not count:
            return {}
        metrics = {"val_loss": (recon_sum + self.beta * kl_sum) / count, "val_recon": recon_sum / count}
        if self.variational:
            metrics["val_kl"] = kl_sum / count
        return metrics

    def samples(self, model):
        """Inputs on the top row, their reconstructions (from the code's mean) below; for the VAE also
        the decodes of fixed codes drawn from the prior."""
        from core.data.images import grid_png
        device = next(model.parameters()).device
        out = {}
        if self.sample_batch is not None:
            x = self.sample_batch.to(device)
            logits, _, _ = model(x)
            out["reconstructions"] = grid_png(torch.cat([x.float(), torch.sigmoid(logits.float())]), nrow=len(x))
        if self.variational:
            out["prior"] = grid_png(torch.sigmoid(model.decode(self.prior_noise.to(device)).float()), nrow=8)
        return out


# ---- the task's spec ---------------------------------------------------------------------------

def _sized_data(config):
    """The data config at the size this family trains (a folder's native size kept within 4-128 px)."""
    from core.tasks.classification import sized_data
    return sized_data(config, 4, 128)


def setup(config, device):
    from core.data import load_dataset
    from core.options import resolve
    from core.tasks import Setup
    from core.tasks.classification import build_image_model, data_metadata, image_batches, image_preprocessing

    splits = load_dataset(_sized_data(config), seed=config.seed)
    pre = image_preprocessing(splits, 0.0, 1.0)  # x / 255: pixels in [0, 1], targets of the sigmoid
    train, val = image_batches(config, splits, device, pre)
    model = build_image_model(config, {"preprocessing": pre})
    options = resolve(config.task_options, OPTIONS)
    sample_batch = splits.val_x[:SAMPLE_COUNT].float() / 255.0  # (16, C, H, W)
    task = AutoencoderTask(variational=model.variational, loss=options["loss"], beta=options["beta"],
                           sample_every=options["sample_every"], sample_batch=sample_batch.to(device),
                           latent_dim=model.latent_dim)
    mean, _ = splits.mean_std()
    metadata = {"preprocessing": pre, "latent_dim": model.latent_dim, "variational": model.variational,
                "pixel_mean": float(sum(mean) / len(mean)), **data_metadata(splits)}
    return Setup(task=task, model=model, train_batches=train, val_batches=val, metadata=metadata)


def _validate(config) -> None:
    from core.tasks.classification import validate_image_data
    validate_image_data(config, min_size=4, max_size=128)


def _spec():
    from core.tasks.classification import build_image_model
    from core.tasks import TaskSpec
    return TaskSpec(sized_data=_sized_data, name="autoencoder", watches=(AutoencoderTask.best_metric, AutoencoderTask.best_mode), title="Autoencoder / VAE",
                    description="Compress images to a small code and reconstruct them; the VAE makes the code "
                                "a distribution you can sample and walk",
                    data_kind="images", setup=setup, build_model=build_image_model, validate=_validate, options=OPTIONS,
                    entry_points={"reconstruct": "reconstruct:reconstruct_upload",
                                  "encode": "reconstruct:encode_validation", "walk": "reconstruct:latent_walk",
                                  "generate": "reconstruct:prior_samples"})


SPEC = _spec()
