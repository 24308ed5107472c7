"""scikit-learn's bundled 8x8 handwritten digits: 1,797 images, offline, trains in seconds on a CPU."""

from __future__ import annotations

from core.data import register_dataset

DIGIT_CLASSES = tuple(str(d) for d in range(10))


@register_dataset("digits", description="Handwritten digits, 8x8 grey (scikit-learn, 1,797 images, offline)",
                  classes=DIGIT_CLASSES, channels=1, image_size=8)
def build_digits(cfg, *, seed: int):
    # Imported here: registering data sets must stay cheap (no torch, no scikit-learn).
    import numpy as np
    import torch
    from sklearn.datasets import load_digits

    from core.data.splits import ImageSplits, split_train_val

    bunch = load_digits()
    # Pixel values are counts 0..16 of a 4x4 block's set pixels; stretch them to 0..255 so this
    # data set looks like every other uint8 image set.
    images = np.rint(bunch.images.astype(np.float64) * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    x = torch.from_numpy(images).unsqueeze(1)  # (1797, 1, 8, 8)
    y = torch.from_numpy(bunch.target.astype(np.int64))  # (1797,)
    train_x, train_y, val_x, val_y = split_train_val(x, y, cfg.val_fraction, seed)
    return ImageSplits(train_x, train_y, val_x, val_y, classes=list(DIGIT_CLASSES), channels=1, image_size=8,
                       source="scikit-learn load_digits (UCI optical recognition of handwritten digits)")
