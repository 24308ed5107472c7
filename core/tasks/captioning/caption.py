"""Captioning at inference time: greedy decoding and beam search (core.models.captioning) on an upload.

    captioner = load_captioner(run_id, "best")
    captioner.greedy(image)              # {"caption": "a red circle left of a blue square", "log_prob": -0.4, ...}
    captioner.beam(image, width=5)       # the same, best first, up to `width` of them

"""

from __future__ import annotations

import torch

from core.models.captioning import beam_search, greedy_decode

# ---- a trained run ----------------------------------------------------------------------------------

class Captioner:
    """A captioning run's model with its vocabulary and preprocessing, for PIL images."""

    def __init__(self, model, metadata: dict, device="cpu"):
        from core.data.scenes import Vocabulary
        self.model, self.device = model.eval(), torch.device(device)
        self.vocab = Vocabulary(metadata["vocab"])
        pre = metadata["preprocessing"]
        self.image_size, self.max_length = int(pre["image_size"]), int(metadata["max_length"])
        self.mean = torch.tensor(pre["mean"], device=self.device).view(1, -1, 1, 1)
        self.std = torch.tensor(pre["std"], device=self.device).view(1, -1, 1, 1)

    def prepare(self, images) -> torch.Tensor:
        """PIL images (any size; RGB) -> (B, 3, S, S) normalised, squashed like the training folders."""
        import numpy as np
        from PIL import Image
        arrays = []
        for image in images:
            rgb = image.convert("RGB")
            if rgb.size != (self.image_size, self.image_size):
                rgb = rgb.resize((self.image_size, self.image_size), Image.Resampling.BILINEAR)
            arrays.append(np.asarray(rgb, dtype=np.uint8))
        x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).to(self.device, torch.float32)
        return (x / 255.0 - self.mean) / self.std

    def text(self, tokens) -> str:
        return " ".join(self.vocab.decode(tokens))

    def greedy(self, image) -> dict:
        tokens, log_probs = greedy_decode(self.model, self.prepare([image]), self.max_length,
                                          self.vocab.START, self.vocab.END)
        return {"caption": self.text(tokens[0]), "tokens": tokens[0], "log_prob": float(log_probs[0])}

    def beam(self, image, width: int = 3, alpha: float = 0.7) -> list[dict]:
        results = beam_search(self.model, self.prepare([image]), width, self.max_length, self.vocab.START,
                              self.vocab.END, alpha=alpha)
        return [{"caption": self.text(r["tokens"]), **r} for r in results]


def load_captioner(run_id: str, which: str = "best", device="cpu") -> Captioner:
    """The captioner of a run (core.tasks.checkpoints.load_run_model: weights_only, cached until the file changes)."""
    from core.errors import CheckpointError
    from core.tasks.checkpoints import load_run_model
    run_model = load_run_model(run_id, which, device=device)
    if run_model.task != "captioning":
        raise CheckpointError(f"run {run_id} is a '{run_model.task}' run, not an image captioning run")
    return Captioner(run_model.model, run_model.metadata, device=device)


def scene(seed: int, image_size: int = 64):
    """A freshly generated scene (PIL image) and its true captions: the Media page's "try a scene"."""
    from PIL import Image

    from core.data.scenes import describe, generate_scenes
    images, objects = generate_scenes(1, seed, image_size)
    return Image.fromarray(images[0].permute(1, 2, 0).numpy()), describe(objects[0])
