"""Adversarial examples for image classifiers, L∞: FGSM and PGD as pure functions, and the settings of
adversarial training (the classification family's task options `adversarial`, `adv_method`, `adv_eps`, ...).

- FGSM, the fast gradient sign method: one step of size ε along the sign of the loss's input gradient
  (Goodfellow, Shlens & Szegedy 2014, "Explaining and Harnessing Adversarial Examples", arXiv:1412.6572).
  With a random start in the ε-ball and a step of about 1.25 ε it is a cheap adversarial-training attack
  (Wong, Rice & Kolter 2020, "Fast is better than free", arXiv:2001.03994).
- PGD, projected gradient descent: k sign-gradient steps from a random start, each projected back into the
  ε-ball (Madry, Makelov, Schmidt, Tsipras & Vladu 2017, "Towards Deep Learning Models Resistant to
  Adversarial Attacks", arXiv:1706.06083).

The models see inputs normalised per channel, x_n = (x / 255 - mean) / std, while ε is given in pixel units
of a 0-255 image (ε = 8 means 8/255). So ε becomes ε / 255 / std_c in channel c, and every adversarial input
is clamped to the normalised image of [0, 1]: [(0 - mean_c) / std_c, (1 - mean_c) / std_c].

The gradient is taken with `torch.autograd.grad` with respect to the input alone, so no parameter's `.grad`
is written; the functions leave the model's mode alone (evaluation calls them in eval mode, training in
train mode, as Madry et al. and Wong et al. do).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch.nn import functional as F

METHODS = ("fgsm", "pgd")
MAX_EPS = 255.0  # pixels: ε = 255 allows any image
FGSM_RS_STEP = 1.25  # Wong et al.'s FGSM step with a random start, as a multiple of ε
PGD_STEP = 2.5  # Madry et al.'s rule: step = 2.5 ε / steps, so the walk can cross the ball and back
ROBUST_EVAL_IMAGES = 512  # validation images the per-epoch robust accuracy is measured on (the first ones)
ROBUST_EVAL_SEED = 1234  # random starts of that measurement: the same every epoch, so epochs compare


def channel_bounds(mean: Sequence[float], std: Sequence[float], x: torch.Tensor):
    """(scale, low, high), each (1, C, 1, 1) on x's device: one pixel unit (1/255) in normalised units per
    channel, and the normalised values of pixel 0 and pixel 255. A single mean/std serves every channel."""
    channels = x.shape[1]
    m = torch.as_tensor(mean, dtype=torch.float32, device=x.device).flatten().expand(channels).reshape(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32, device=x.device).flatten().expand(channels).reshape(1, -1, 1, 1)
    return 1.0 / (255.0 * s), (0.0 - m) / s, (1.0 - m) / s


def input_gradient(model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """d(sum of cross-entropy)/dx, shape of x (B, C, H, W); summed, not averaged, so each sample's gradient
    does not shrink with the batch (only its sign is used). No parameter .grad is touched."""
    with torch.inference_mode(False), torch.enable_grad():
        x = x.detach().clone().requires_grad_(True)
        logits = model(x).float()  # (B, K)
        loss = F.cross_entropy(logits, y.clone(), reduction="sum")
        (grad,) = torch.autograd.grad(loss, [x])
    return grad


def _uniform(like: torch.Tensor, radius: torch.Tensor, generator) -> torch.Tensor:
    """U(-radius, radius) per element, (B, C, H, W); `radius` is (1, C, 1, 1)."""
    noise = torch.rand(like.shape, generator=generator, device=like.device, dtype=torch.float32)
    return (2.0 * noise - 1.0) * radius


def fgsm(model, x: torch.Tensor, y: torch.Tensor, eps: float, mean, std, *, random_start: bool = False,
         step_size: float | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """The FGSM input for normalised x (B, C, H, W) with labels y (B,): x + ε sign(∇x L), clamped to the
    valid image. With `random_start` (FGSM-RS, Wong et al. 2020) it starts at a uniform point of the ε-ball,
    steps `step_size` pixels (default 1.25 ε) and is projected back into the ball. Returned detached."""
    x = x.detach()
    scale, low, high = channel_bounds(mean, std, x)
    radius = eps * scale  # (1, C, 1, 1) ε in normalised units
    if random_start:
        step = (FGSM_RS_STEP * eps if step_size is None else step_size) * scale
        start = torch.clamp(x + _uniform(x, radius, generator), low, high)
    else:
        step, start = (radius if step_size is None else step_size * scale), x
    moved = start + step * input_gradient(model, start, y).sign()
    return torch.clamp(torch.max(torch.min(moved, x + radius), x - radius), low, high).detach()


def pgd(model, x: torch.Tensor, y: torch.Tensor, eps: float, mean, std, *, steps: int = 10,
        step_size: float | None = None, random_start: bool = True,
        generator: torch.Generator | None = None) -> torch.Tensor:
    """The PGD-k input (Madry et al.) for normalised x (B, C, H, W) and labels y (B,): from a uniform point of
    the ε-ball (or x itself), `steps` steps of `step_size` pixels (default 2.5 ε / steps) along the gradient's
    sign, each projected onto the ε-ball around x and the valid image. Returned detached."""
    x = x.detach()
    scale, low, high = channel_bounds(mean, std, x)
    radius = eps * scale  # (1, C, 1, 1)
    step = (PGD_STEP * eps / steps if step_size is None else step_size) * scale
    adv = torch.clamp(x + _uniform(x, radius, generator), low, high) if random_start else x.clone()
    for _ in range(steps):
        adv = adv + step * input_gradient(model, adv, y).sign()
        adv = torch.clamp(torch.max(torch.min(adv, x + radius), x - radius), low, high)
    return adv.detach()


def attack(method: str, model, x, y, eps: float, mean, std, *, steps: int = 10, step_size: float | None = None,
           random_start: bool | None = None, generator=None) -> torch.Tensor:
    """fgsm or pgd by name. FGSM starts at x unless asked (the 2014 attack); PGD starts at random unless told."""
    if method == "fgsm":
        return fgsm(model, x, y, eps, mean, std, random_start=bool(random_start), step_size=step_size,
                    generator=generator)
    if method == "pgd":
        return pgd(model, x, y, eps, mean, std, steps=steps, step_size=step_size,
                   random_start=True if random_start is None else random_start, generator=generator)
    raise ValueError(f"unknown attack '{method}'; known: {', '.join(METHODS)}")


def seeded_generator(seed: int, device) -> torch.Generator:
    generator = torch.Generator(device=torch.device(device))
    generator.manual_seed(int(seed))
    return generator


def unwrapped(model):
    """The model under a DDP wrapper (and torch.compile around it): attack passes must not run DDP's
    gradient hooks, which expect one backward per forward; the parameters are the same."""
    from torch.nn.parallel import DistributedDataParallel
    inner = getattr(model, "_orig_mod", model)
    return inner.module if isinstance(inner, DistributedDataParallel) else model


# ---- adversarial training ------------------------------------------------------------------------

@dataclass
class AdversarialTraining:
    """Adversarial training of a classifier (Madry et al.: minimise the loss on the worst input in the ε-ball).
    `method` fgsm: FGSM-RS, one step (Wong et al.); pgd: PGD-`steps`. ε and the step in pixels of 255."""
    method: str
    eps: float
    steps: int
    step_size: float | None  # None: 1.25 ε for FGSM-RS, 2.5 ε / steps for PGD
    mean: list
    std: list
    seed: int = 0
    generator: torch.Generator | None = field(default=None, repr=False, compare=False)  # made on first use

    @classmethod
    def from_options(cls, options: dict, pre: dict, seed: int) -> AdversarialTraining | None:
        """From the classification task options (core.options.resolve'd) and the run's preprocessing; None when
        adversarial training is off."""
        if not options.get("adversarial"):
            return None
        step = float(options.get("adv_step_size") or 0.0)
        return cls(method=options["adv_method"], eps=float(options["adv_eps"]), steps=int(options["adv_steps"]),
                   step_size=step or None, mean=list(pre["mean"]), std=list(pre["std"]), seed=int(seed))

    def perturb(self, model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The training batch's adversarial inputs (B, C, H, W), made with the model in its training mode."""
        if self.generator is None or self.generator.device != x.device:
            self.generator = seeded_generator(self.seed, x.device)  # its own stream: the data order stays put
        return attack(self.method, unwrapped(model), x, y, self.eps, self.mean, self.std, steps=self.steps,
                      step_size=self.step_size, random_start=True, generator=self.generator)

    def robust_accuracy(self, model, batches, autocast=None, limit: int = ROBUST_EVAL_IMAGES) -> float:
        """Accuracy under PGD-max(steps, 10) at the training ε on the first `limit` validation images (a fixed
        subset: measuring all of a large split every epoch would cost ~10 forward-backward passes per image),
        eval mode, random starts seeded the same every epoch."""
        from contextlib import nullcontext
        was_training = model.training
        model.eval()
        generator, correct, seen = None, 0, 0
        try:
            for inputs, targets in batches.epoch(0) if hasattr(batches, "epoch") else batches:
                inputs, targets = inputs[:limit - seen], targets[:limit - seen]
                if generator is None:
                    generator = seeded_generator(ROBUST_EVAL_SEED, inputs.device)
                with autocast() if autocast else nullcontext():
                    adv = pgd(model, inputs, targets, self.eps, self.mean, self.std, steps=max(self.steps, 10),
                              generator=generator)
                    with torch.no_grad():
                        correct += int((model(adv).argmax(dim=1) == targets).sum())
                seen += len(targets)
                if seen >= limit:
                    break
        finally:
            model.train(was_training)
        return correct / max(seen, 1)
