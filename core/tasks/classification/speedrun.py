"""The fast-training techniques of the CIFAR-10 speedruns that live outside the network, as options of any
image classification run (the `cifar10-speedrun` preset turns them all on):

- lookahead (Zhang et al. 2019) in the form Jordan (2024, arXiv:2404.00498) uses: every 5 steps the slow
  weights move towards the fast ones by a fraction that shrinks as training ends, and the fast weights are
  reset to them; after the last step the network is the slow weights;
- test-time augmentation: the logits averaged over the image and its mirror, and (level "flip_translate")
  over both shifted by one pixel up-left and down-right;
- data-dependent initialisation: a model with `fit_to_data(images)` (core.models.speedrun's whitening layer)
  is fitted to the first training images before the first step;
- a model with `set_epoch(epoch)` hears which epoch starts (the whitening bias trains for the first epochs only).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from core.engine.callbacks import Callback

LOOKAHEAD_EVERY = 5  # steps between slow-weight updates
LOOKAHEAD_DECAY = 0.95 ** LOOKAHEAD_EVERY  # the slow weights' decay at the end of training
FIT_IMAGES = 5000  # training images the whitening layer is fitted to (airbench94's choice)


class Lookahead(Callback):
    """Slow weights `ema` (float copies of every floating-point tensor of the state dict, buffers included).
    Every LOOKAHEAD_EVERY steps: ema ← ema + (1 - decay) (w - ema), then w ← ema, with decay =
    LOOKAHEAD_DECAY · (progress)³, so early on the fast weights are almost kept and late on mostly averaged.
    A resumed run starts its slow weights from the checkpoint's weights (at most 4 steps of averaging lost)."""

    def __init__(self):
        self.ema: dict[str, torch.Tensor] | None = None

    def on_fit_start(self, trainer):
        self.ema = {k: v.detach().clone() for k, v in trainer.model.state_dict().items() if v.is_floating_point()}

    def on_train_batch_end(self, trainer):
        total = trainer.config.optim.epochs * trainer.steps_per_epoch
        if trainer.step % LOOKAHEAD_EVERY == 0:
            self._update(trainer.model, LOOKAHEAD_DECAY * min(1.0, trainer.step / total) ** 3)
        if trainer.step >= total:
            self._update(trainer.model, 1.0)  # the end: the network becomes the slow weights

    @torch.no_grad()
    def _update(self, model, decay: float) -> None:
        state = model.state_dict()
        names = list(self.ema)
        slow, fast = [self.ema[k] for k in names], [state[k] for k in names]
        torch._foreach_lerp_(slow, fast, 1.0 - decay)
        torch._foreach_copy_(fast, slow)


class EpochAnnouncer(Callback):
    """Tells a model with `set_epoch(epoch)` which epoch is about to train (also after a resume)."""

    def on_fit_start(self, trainer):
        trainer.model.set_epoch(trainer.epoch)

    def on_epoch_end(self, trainer, metrics):
        trainer.model.set_epoch(trainer.epoch)


def callbacks_for(model, options: dict) -> list:
    found = [Lookahead()] if options["lookahead"] else []
    if hasattr(model, "set_epoch"):
        found.append(EpochAnnouncer())
    return found


@torch.no_grad()
def fit_to_data(model, train_batches, train_x: torch.Tensor | None, pre: dict) -> None:
    """Call model.fit_to_data on the first FIT_IMAGES training images, normalised as training batches are:
    from the uint8 images (N, C, H, W) when they are in memory, else from the first batches of epoch 0."""
    if train_x is not None:
        from core.data.loader import normaliser
        x = train_x[:FIT_IMAGES]
        scale, shift = normaliser(pre["mean"], pre["std"], x.shape[1], x.device)
        images = torch.addcmul(shift, x.float(), scale)
    else:  # streamed from disk
        taken = []
        for inputs, _ in train_batches.epoch(0):
            taken.append(inputs.float().cpu())
            if sum(len(t) for t in taken) >= FIT_IMAGES:
                break
        images = torch.cat(taken)[:FIT_IMAGES]
    model.fit_to_data(images)


def tta_logits(model, inputs: torch.Tensor, level: str) -> torch.Tensor:
    """Logits (B, K) averaged over test-time views of `inputs` (B, C, H, W): "flip" the image and its mirror;
    "flip_translate" half of that plus half the mean over the two one-pixel shifts (reflect-padded), each
    with its mirror too."""
    def with_mirror(x):
        return 0.5 * (model(x).float() + model(x.flip(-1)).float())

    logits = with_mirror(inputs)
    if level == "flip_translate":
        height, width = inputs.shape[-2:]
        padded = F.pad(inputs, (1, 1, 1, 1), mode="reflect")  # (B, C, H + 2, W + 2)
        shifted = [padded[..., :height, :width], padded[..., 2:, 2:]]  # one pixel up-left, one down-right
        logits = 0.5 * logits + 0.25 * sum(with_mirror(x) for x in shifted)
    return logits
