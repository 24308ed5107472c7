"""Generative adversarial networks: what one DCGAN step computes, and how a generator is judged.

Step (see core.models.gan for why): loss = D's loss on real images and detached fakes + G's
non-saturating loss -log D(G(z)) through D with detached parameters; one backward and one Adam step
update both players at once (simultaneous gradient descent). Logged per window: train_d_loss,
train_g_loss, train_d_real (mean D(x) on real images), train_d_fake (mean D(G(z))), train_loss (sum).

Validation (once per epoch), with the generator in eval mode as it is used for sampling:
  val_fd      Fréchet distance (as in FID, Heusel et al. 2017) between held-out real images and fresh
              fakes, measured in a FIXED, randomly initialised conv feature space (no download, the
              same features for every run, so numbers compare across runs of one data set). It falls
              as the fakes' feature statistics approach the data's; it is not comparable to
              published FID values. Lower is better: the best checkpoint is the lowest val_fd.
  val_fd_real the same distance between training and held-out REAL images: the floor that val_fd
              could reach with this many images (it is not 0, because both sets are finite samples).
  val_d_real / val_d_fake / val_d_loss  how the discriminator judges held-out real images and
              fresh fakes (batch statistics, as in training): near 1 and 0 means D wins easily.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
from torch.nn import functional as F

from core.options import Option

OPTIONS = {
    "sample_every": Option(100, "Steps between the sample grids drawn from a fixed noise batch (watch them "
                                "evolve in the live view)", low=1, high=1_000_000, label="sample every (steps)"),
    "fd_samples": Option(1000, "Images (held-out real ones, and as many fakes) behind the validation "
                               "Fréchet distance; more is steadier and slower", low=64, high=20_000,
                         label="images for val_fd"),
}
GRID_NOISE_SEED = 20_150_001  # the fixed noise of the sample grid: the same grid positions all run long
EVAL_NOISE_SEED = 7  # fresh fakes for validation, identical every epoch so epochs compare
GRID_COUNT = 64


# ---- a fixed random feature space for the Fréchet distance --------------------------------------

class RandomFeatures:
    """A conv net with fixed He-initialised random weights (seed 0): images (B, C, H, W) in [-1, 1] ->
    features (B, 176). Global means of three depths (texture and stroke statistics) plus a 2x2 pooled
    deepest map (coarse layout). Random conv features are a cheap, download-free stand-in for
    Inception features: they respond to edges, blobs and colours, so they separate noise, blur and
    real-looking images, though far less finely than a trained network."""

    WIDTHS = (16, 32, 32)

    def __init__(self, channels: int, device):
        g = torch.Generator().manual_seed(0)  # own generator: never disturbs the training RNG
        self.weights, c_in = [], channels
        for c_out in self.WIDTHS:
            w = torch.randn(c_out, c_in, 3, 3, generator=g) * (2.0 / (c_in * 9)) ** 0.5
            self.weights.append(w.to(device))
            c_in = c_out

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        feats = []
        h = x.float()
        for i, w in enumerate(self.weights):
            h = F.relu(F.conv2d(h, w, padding=1))  # (B, c_out, S, S)
            feats.append(h.mean(dim=(2, 3)))
            if i < len(self.weights) - 1 and min(h.shape[-2:]) >= 4:
                h = F.avg_pool2d(h, 2)
        feats.append(F.adaptive_avg_pool2d(h, 2).flatten(1))  # (B, 32 * 4)
        return torch.cat(feats, dim=1)  # (B, 16 + 32 + 32 + 128)


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2) for features a (N, d), b (M, d).

    Computed in float64 with symmetric eigendecompositions (the square root of S_a S_b has the
    same trace as that of the symmetric S_a^1/2 S_b S_a^1/2), so no complex sqrtm is needed.
    """
    a, b = a.double().cpu(), b.double().cpu()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)  # (d, d), unbiased like numpy.cov
    values, vectors = torch.linalg.eigh(cov_a)
    root_a = (vectors * values.clamp_min(0).sqrt()) @ vectors.T
    middle = root_a @ cov_b @ root_a
    trace_root = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0).sqrt().sum()
    value = (mu_a - mu_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * trace_root
    return max(float(value), 0.0)


def _d_batch_stats(disc, x: torch.Tensor) -> torch.Tensor:
    """D's logits for x with batch-norm on batch statistics, as in training, without touching D's
    running statistics (scratch copies of its buffers take the update)."""
    from torch.func import functional_call
    was_training = disc.training
    disc.train()
    try:
        state = {**dict(disc.named_parameters()), **{n: t.clone() for n, t in disc.named_buffers()}}
        return functional_call(disc, state, (x,))
    finally:
        disc.train(was_training)


class GANTask:
    name = "gan"
    best_metric = "val_fd"
    best_mode = "min"

    def __init__(self, *, latent_dim: int, channels: int, device, sample_every: int = 100,
                 fd_samples: int = 1000, train_x=None):
        self.latent_dim, self.channels = latent_dim, channels
        self.sample_every, self.fd_samples = int(sample_every), int(fd_samples)
        self.device = torch.device(device)
        self.features = RandomFeatures(channels, self.device)
        g = torch.Generator().manual_seed(GRID_NOISE_SEED)
        self.grid_noise = torch.randn(GRID_COUNT, latent_dim, generator=g).to(self.device)  # (64, L)
        self.train_x = train_x  # a few training images (uint8) for the val_fd_real floor
        self._real_floor: float | None = None

    # ---- training -------------------------------------------------------------------------
    def clip_groups(self, model) -> list[list[torch.nn.Parameter]]:
        """optim.grad_clip bounds each player's gradient norm on its own: clipped together, a
        discriminator's large gradient would shrink the generator's step too."""
        return [list(model.generator.parameters()), list(model.discriminator.parameters())]

    def training_step(self, model, batch):
        from torch.func import functional_call
        real, _ = batch  # (B, C, H, W) in [-1, 1]
        gen, disc = model.generator, model.discriminator
        bsz = real.shape[0]
        z = torch.randn(bsz, self.latent_dim, device=real.device)  # (B, L)
        fake = gen(z)  # (B, C, H, W)

        real_logits = disc(real)  # (B,)
        fake_logits = disc(fake.detach())  # detached: D's loss gives the generator no gradient
        d_loss = (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                  + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
        # G's term through D with detached weights: gradients flow to G via `fake`, never into D
        frozen = {name: p.detach() for name, p in disc.named_parameters()}
        g_logits = functional_call(disc, frozen, (fake,))
        g_loss = F.binary_cross_entropy_with_logits(g_logits, torch.ones_like(g_logits))  # -log D(G(z))
        loss = d_loss + g_loss
        with torch.no_grad():
            sums = {"loss": loss.detach().float() * bsz, "d_loss": d_loss.detach().float() * bsz,
                    "g_loss": g_loss.detach().float() * bsz,
                    "d_real": torch.sigmoid(real_logits.detach().float()).sum(),
                    "d_fake": torch.sigmoid(fake_logits.detach().float()).sum(),
                    "count": torch.tensor(bsz, device=real.device)}
        return loss, sums

    def summarize(self, sums):
        count = max(float(sums["count"]), 1.0)
        return {key: float(sums[key]) / count for key in ("loss", "d_loss", "g_loss", "d_real", "d_fake")}

    # ---- validation -----------------------------------------------------------------------
    @torch.inference_mode()
    def evaluate(self, model, batches, autocast=None):
        was_training = model.training
        model.eval()
        gen, disc = model.generator, model.discriminator
        try:
            reals = []
            kept = 0
            for images, _ in batches.epoch(0) if hasattr(batches, "epoch") else batches:
                reals.append(images[: self.fd_samples - kept])
                kept += len(reals[-1])
                if kept >= self.fd_samples:
                    break
            if not kept:
                return {}
            g = torch.Generator().manual_seed(EVAL_NOISE_SEED)
            real_feats, fake_feats, d_real, d_fake, d_loss = [], [], 0.0, 0.0, 0.0
            n_fake = 0
            for real in reals:
                with autocast() if autocast else nullcontext():
                    z = torch.randn(len(real), self.latent_dim, generator=g).to(real.device)
                    fake = gen(z).float()
                    real_logits = _d_batch_stats(disc, real).float()
                    fake_logits = _d_batch_stats(disc, fake).float()
                real_feats.append(self.features(real))
                fake_feats.append(self.features(fake))
                d_real += float(torch.sigmoid(real_logits).sum())
                d_fake += float(torch.sigmoid(fake_logits).sum())
                d_loss += float(F.softplus(-real_logits).sum() + F.softplus(fake_logits).sum())
                n_fake += len(real)
            metrics = {"val_fd": frechet_distance(torch.cat(real_feats), torch.cat(fake_feats)),
                       "val_d_real": d_real / kept, "val_d_fake": d_fake / n_fake, "val_d_loss": d_loss / kept}
            floor = self._floor(torch.cat(real_feats), reals[0])
            if floor is not None:
                metrics["val_fd_real"] = floor
            return metrics
        finally:
            model.train(was_training)

    def _floor(self, real_feats: torch.Tensor, like: torch.Tensor) -> float | None:
        """FD between training and held-out real images (computed once: the data do not change)."""
        if self._real_floor is None and self.train_x is not None and len(self.train_x):
            x = self.train_x[: len(real_feats)].to(like.device, torch.float32) / 127.5 - 1.0  # uint8 -> [-1, 1]
            self._real_floor = frechet_distance(self.features(x), real_feats)
        return self._real_floor

    # ---- samples for the live view --------------------------------------------------------
    def samples(self, model):
        from core.data.images import grid_png
        fake = model.generator(self.grid_noise.to(next(model.parameters()).device))  # (64, C, H, W)
        return {"grid": grid_png((fake.float() + 1) / 2, nrow=8)}


# ---- the task's spec ---------------------------------------------------------------------------

def _sized_data(config):
    """The data config at the size this family trains (a folder's native size kept within 8-128 px)."""
    from core.tasks.classification import sized_data
    return sized_data(config, 8, 128)


def setup(config, device):
    from core.data import load_dataset
    from core.models import model_info
    from core.options import resolve
    from core.tasks import Setup
    from core.tasks.classification import build_image_model, data_metadata, image_batches, image_preprocessing

    splits = load_dataset(_sized_data(config), seed=config.seed)
    pre = image_preprocessing(splits, 0.5, 0.5)  # x / 255 -> [-1, 1], the range of the generator's tanh
    train, val = image_batches(config, splits, device, pre)
    model = build_image_model(config, {"preprocessing": pre})
    options = resolve(config.task_options, OPTIONS)
    latent_dim = resolve(config.model.options, model_info(config.model.name).options)["latent_dim"]
    task = GANTask(latent_dim=latent_dim, channels=splits.channels, device=device,
                   sample_every=options["sample_every"], fd_samples=options["fd_samples"],
                   train_x=splits.train_x[: options["fd_samples"]])
    metadata = {"preprocessing": pre, "latent_dim": latent_dim, **data_metadata(splits)}
    return Setup(task=task, model=model, train_batches=train, val_batches=val, metadata=metadata)


def _validate(config) -> None:
    from core.errors import ConfigError
    from core.models.gan import stages_for
    from core.tasks.classification import validate_image_data
    size = validate_image_data(config, min_size=8, max_size=128)
    if stages_for(size) < 1:
        raise ConfigError(f"data.image_size: dcgan needs an even image size (8 or more), got {size}px; "
                          "28 or 32 work best")


def _spec():
    from core.tasks.classification import build_image_model
    from core.tasks import TaskSpec
    return TaskSpec(sized_data=_sized_data, name="gan", watches=(GANTask.best_metric, GANTask.best_mode), title="Generative adversarial network",
                    description="A generator learns to draw images that a discriminator cannot tell from real "
                                "ones (DCGAN); watch samples from fixed noise evolve",
                    data_kind="images", setup=setup, build_model=build_image_model, validate=_validate, options=OPTIONS,
                    entry_points={"generate": "generate:generate_grid", "interpolate": "generate:interpolate",
                                  "export": "export_spec:export_spec"})


SPEC = _spec()
