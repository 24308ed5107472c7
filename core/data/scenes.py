"""Captioned images: generated scenes of coloured shapes, the vocabulary, and device-side caption batches.

"captioned-scenes" draws one to three shapes (circle, square, triangle, diamond in six colours, small
or large) into distinct cells of a 3x3 grid on a dark noisy background, and writes a few phrasings
per scene that name colours, shapes, sizes and relations ("a red circle left of a blue square",
"a small green triangle above a yellow circle"). Relations follow the grid cells, so every caption
is true and the left/above words are learnable from the pixels. Everything random comes from one
seeded numpy generator: the same seed and options give byte-identical images and captions.

Every data set of kind "captions" returns a `CaptionData` (uint8 images and raw caption strings per
image); the task tokenises with `tokenize`, builds a `Vocabulary` from the training captions and
serves (image, caption) pairs with `CaptionBatches`.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from core.data import register_dataset
from core.options import Option

COLOURS = {"red": (215, 40, 40), "green": (45, 175, 65), "blue": (50, 100, 235), "yellow": (230, 205, 45),
           "purple": (150, 65, 205), "white": (230, 230, 230)}
SHAPES = ("circle", "square", "triangle", "diamond")
SIZES = ("small", "large")
DEFAULT_SIZE = 64
_GRID = 3  # shapes sit in distinct cells of a 3x3 grid: relations are never ambiguous
_ROWS, _COLS = ("top", "middle", "bottom"), ("left", "centre", "right")
GENERATOR_VERSION = 2  # bump whenever drawing or captions change: cached scenes from older code are not reused

SCENE_OPTIONS = {
    "num_samples": Option(3000, "Number of generated scenes (each has 3 or 4 captions)", low=10, high=200_000,
                          label="Scenes"),
    "image_size": Option(DEFAULT_SIZE, "Side of the square images in pixels", low=32, high=256),
    "max_shapes": Option(3, "At most this many shapes per scene (1 to 3)", low=1, high=3),
    "val_fraction": Option(0.1, "Share of the scenes held out for validation", low=0.01, high=0.5),
}


@dataclass
class CaptionData:
    """What every "captions" data set returns: images with one or more raw captions each."""
    train_x: object  # (N, 3, S, S) uint8 tensor
    train_captions: list[list[str]]  # N lists of captions
    val_x: object  # (M, 3, S, S) uint8 tensor
    val_captions: list[list[str]]
    image_size: int
    source: str = ""
    skipped: int = 0  # images that could not be decoded (folders); reported, never fatal
    details: dict = field(default_factory=dict)


# ---- drawing --------------------------------------------------------------------------------------

def _inside(shape: str, u, v, r):
    """Mask of one shape kind. u, v: (n, S, S) offsets from the centre in pixels, r: (n, 1, 1) radius."""
    if shape == "circle":
        return u * u + v * v <= r * r
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.82 * r
    if shape == "diamond":
        return np.abs(u) + np.abs(v) <= 1.1 * r
    if shape == "triangle":  # apex up, flat base
        return (v <= 0.8 * r) & (np.abs(u) <= 0.58 * (v + r))
    raise AssertionError(shape)


def generate_scenes(num_samples: int, seed: int, image_size: int = DEFAULT_SIZE, max_shapes: int = 3):
    """(N, 3, S, S) uint8 images and, per scene, a list of (colour, shape, size, row, col) objects.

    Drawn for all scenes at once, one shape slot at a time, with numpy masks over a shared grid.
    """
    import torch  # here, not at the top: registering the data set must not import torch

    rng = np.random.default_rng(int(seed))
    n, s = int(num_samples), int(image_size)
    cell = s / _GRID
    counts = rng.integers(1, max_shapes + 1, n)  # (n,) shapes per scene
    cells = np.argsort(rng.random((n, _GRID * _GRID)), axis=1)[:, :3]  # (n, 3) distinct cells
    colour = rng.integers(0, len(COLOURS), (n, 3))
    shape = rng.integers(0, len(SHAPES), (n, 3))
    large = rng.random((n, 3)) < 0.5
    radius = np.where(large, rng.uniform(0.40, 0.45, (n, 3)), rng.uniform(0.26, 0.30, (n, 3))) * cell
    slack = np.maximum(cell / 2 - radius - 1, 0)  # centre jitter that keeps the shape in its cell
    jitter = rng.uniform(-1, 1, (2, n, 3)) * slack
    cy = (cells // _GRID + 0.5) * cell + jitter[0]  # (n, 3)
    cx = (cells % _GRID + 0.5) * cell + jitter[1]
    tint = rng.integers(-20, 21, (n, 3, 3))  # per shape colour jitter
    background = rng.integers(0, 50, (n, 1, 3))
    noise = rng.integers(0, 16, (n, s, s, 3), dtype=np.uint8)

    # owner[i, y, x]: 0 for background, slot + 1 where a shape covers the pixel
    owner = np.zeros((n, s, s), dtype=np.uint8)
    grid = np.arange(s, dtype=np.float32) + 0.5  # pixel centres
    for slot in range(3):
        for k, name in enumerate(SHAPES):
            pick = np.flatnonzero((counts > slot) & (shape[:, slot] == k))
            u = grid[None, None, :] - cx[pick, slot, None, None].astype(np.float32)  # (m, 1, S)
            v = grid[None, :, None] - cy[pick, slot, None, None].astype(np.float32)  # (m, S, 1)
            mask = _inside(name, u, v, radius[pick, slot, None, None].astype(np.float32))  # (m, S, S)
            owner[pick] = np.where(mask, np.uint8(slot + 1), owner[pick])
    palette = np.array(list(COLOURS.values()))  # (K, 3)
    lut = np.concatenate([background, palette[colour] + tint], axis=1)  # (n, 4, 3): background, slots
    lut = np.clip(lut, 0, 255 - 16).astype(np.uint8)  # head-room for the noise
    images = lut[np.arange(n)[:, None, None], owner] + noise  # (n, S, S, 3)
    images = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()  # (n, 3, S, S)

    objects = [[(list(COLOURS)[colour[i, k]], SHAPES[shape[i, k]], SIZES[int(large[i, k])],
                 int(cells[i, k] // _GRID), int(cells[i, k] % _GRID)) for k in range(counts[i])] for i in range(n)]
    return images, objects


# ---- captions -------------------------------------------------------------------------------------

def _name(obj, sized: bool = False) -> str:
    colour, shape, size = obj[:3]
    return f"a {size} {colour} {shape}" if sized else f"a {colour} {shape}"


def _relation(a, b) -> tuple[str, str]:
    """(a relation b, b relation a) from grid cells; callers order a before b (left, else above)."""
    if a[4] != b[4]:
        return "left of", "right of"
    return "above", "below"


def _place(obj) -> str:
    row, col = _ROWS[obj[3]], _COLS[obj[4]]
    if row == "middle":
        return "centre" if col == "centre" else col
    return row if col == "centre" else f"{row} {col}"


def describe(objects) -> list[str]:
    """Three or four true phrasings of one scene, as people would type them (case and commas kept)."""
    objs = sorted(objects, key=lambda o: (o[4], o[3]))  # left to right, then top to bottom
    if len(objs) == 1:
        a = objs[0]
        return [f"A {_name(a)[2:]}.", _name(a, sized=True), f"{_name(a)} near the {_place(a)}"]
    if len(objs) == 2:
        a, b = objs
        forward, backward = _relation(a, b)
        return [f"{_name(a)} {forward} {_name(b)}", f"{_name(b)} {backward} {_name(a)}",
                f"{_name(a, True)} {forward} {_name(b, True)}", f"{_name(a)} and {_name(b)}"]
    a, b, c = objs
    forward, _ = _relation(a, b)
    return [f"{_name(a)}, {_name(b)} and {_name(c)}", f"{_name(a)} {forward} {_name(b)}, and {_name(c)}",
            f"Three shapes: {_name(a)}, {_name(b)} and {_name(c)}."]


def tokenize(text: str) -> list[str]:
    """Lower-case words; punctuation dropped ("A red circle." -> ["a", "red", "circle"])."""
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower())


class Vocabulary:
    """Words by index: the four specials first, then training words by frequency (ties alphabetical)."""
    SPECIALS = ("<pad>", "<start>", "<end>", "<unk>")
    PAD, START, END, UNK = 0, 1, 2, 3

    def __init__(self, words):
        self.words = list(words)
        if self.words[:4] != list(self.SPECIALS):
            raise ValueError("a vocabulary starts with <pad>, <start>, <end>, <unk>")
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def build(cls, captions, min_count: int = 1) -> "Vocabulary":
        """From tokenised training captions; words seen fewer than `min_count` times become <unk>."""
        counts = Counter(word for caption in captions for word in caption)
        kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return cls([*cls.SPECIALS, *kept])

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, words, max_length: int) -> list[int]:
        """<start> w1 .. wn <end>, with at most `max_length` words kept."""
        return [self.START, *(self.index.get(w, self.UNK) for w in words[:max_length]), self.END]

    def decode(self, ids) -> list[str]:
        """Words up to the first <end>, without <start> and <pad>."""
        out = []
        for i in ids:
            i = int(i)
            if i == self.END:
                break
            if i not in (self.PAD, self.START):
                out.append(self.words[i] if 0 <= i < len(self.words) else "<unk>")
        return out


class CaptionBatches:
    """The images of one split held once on the device as uint8, served in batches with all their captions.

    Each batch is (images float32 (B, 3, S, S) normalised, tokens int64 (P, T), owner int64 (P,)):
    the P >= B captions of those images (<start> ... <end>, padded with 0, T the longest in the batch)
    and which image of the batch each caption describes. Batching by image runs the encoder once per
    image however many captions it has. The order of an epoch is a permutation of the images seeded
    with (seed, epoch), so `epoch(e, start_batch=k)` replays batches k.. exactly.
    """

    def __init__(self, images, tokens, image_of, *, batch_size: int, device, mean, std, shuffle: bool,
                 drop_last: bool = False, seed: int = 0, references=None):
        import torch
        self.device = torch.device(device)
        self.x = images.to(self.device)  # (N, 3, S, S) uint8
        self.tokens = tokens.to(self.device)  # (P, T) int64, the captions of image 0 first, then image 1...
        self.image_of = image_of  # (P,) int64 on the CPU, non-decreasing
        self.per_image = torch.bincount(image_of, minlength=len(images))  # (N,) captions of each image
        self.first = torch.cumsum(self.per_image, 0) - self.per_image  # (N,) row of each image's first caption
        self.lengths = (tokens != Vocabulary.PAD).sum(dim=1)  # (P,) on the CPU: no device sync per batch
        self.batch_size, self.shuffle, self.drop_last, self.seed = int(batch_size), shuffle, drop_last, int(seed)
        mean_t, std_t = torch.tensor(mean).view(1, -1, 1, 1), torch.tensor(std).view(1, -1, 1, 1)
        self._scale = (1.0 / (255.0 * std_t)).to(self.device)  # (x / 255 - mean) / std == x * scale + shift
        self._shift = (-mean_t / std_t).to(self.device)
        self.references = references  # per image: list of tokenised captions (validation only)

    @property
    def num_samples(self) -> int:
        return len(self.x)

    def __len__(self) -> int:
        n, b = len(self.x), self.batch_size
        return n // b if self.drop_last and n > b else (n + b - 1) // b

    def normalise(self, x):
        import torch
        return torch.addcmul(self._shift, x, self._scale)

    def epoch(self, epoch: int, start_batch: int = 0):
        import torch
        from core.data.loader import derive_seed
        n = len(self.x)
        order = (torch.randperm(n, generator=torch.Generator().manual_seed(derive_seed(self.seed, epoch)))
                 if self.shuffle else torch.arange(n))
        for i in range(start_batch, len(self)):
            chosen = order[i * self.batch_size:(i + 1) * self.batch_size]  # (B,) image indices, on the CPU
            counts = self.per_image[chosen]  # (B,)
            owner = torch.repeat_interleave(torch.arange(len(chosen)), counts)  # (P,) image within the batch
            offsets = torch.arange(len(owner)) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
            rows = self.first[chosen][owner] + offsets  # (P,) caption rows
            longest = int(self.lengths[rows].max()) if len(rows) else 2
            images = self.x.index_select(0, chosen.to(self.device))
            yield (self.normalise(images), self.tokens.index_select(0, rows.to(self.device))[:, :longest],
                   owner.to(self.device))


def encode_captions(captions: list[list[str]], vocab: Vocabulary, max_length: int):
    """Per-image caption lists -> tokens (P, T) int64 padded with 0 and image index (P,) int64, image by image."""
    import torch
    rows, owner = [], []
    for index, texts in enumerate(captions):
        for text in texts:
            rows.append(vocab.encode(tokenize(text), max_length))
            owner.append(index)
    width = max((len(r) for r in rows), default=2)
    padded = np.zeros((len(rows), width), dtype=np.int64)
    for i, row in enumerate(rows):
        padded[i, :len(row)] = row
    return torch.from_numpy(padded), torch.tensor(owner, dtype=torch.int64)


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """A seeded split of n items; with two or more, each side gets at least one."""
    import torch
    order = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed))).tolist()
    n_val = min(max(int(round(n * val_fraction)), 1), n - 1) if n >= 2 else 0
    return order[n_val:], order[:n_val]


# ---- the generated data set -----------------------------------------------------------------------

def scene_captions(num_samples: int, seed: int, image_size: int = DEFAULT_SIZE, max_shapes: int = 3):
    """Images (N, 3, S, S) uint8 and their captions, cached under LAB_HOME/cache."""
    from core.data.cache import cached_tensors

    def build():
        images, objects = generate_scenes(num_samples, seed, image_size, max_shapes)
        return {"images": images, "captions": [describe(o) for o in objects]}

    data = cached_tensors(f"scenes:v{GENERATOR_VERSION}:{num_samples}:{seed}:{image_size}:{max_shapes}", build)
    return data["images"], data["captions"]


@register_dataset("captioned-scenes", description="Generated scenes of 1-3 coloured shapes with captions that "
                  "name colours, shapes and relations (offline, instant)", channels=3, image_size=DEFAULT_SIZE,
                  kind="captions", options=SCENE_OPTIONS)
def build_scenes(cfg, *, seed: int) -> CaptionData:
    from core.options import resolve
    opts = resolve(cfg.options, SCENE_OPTIONS)
    images, captions = scene_captions(opts["num_samples"], seed, opts["image_size"], opts["max_shapes"])
    train, val = split_indices(len(captions), opts["val_fraction"], seed)
    return CaptionData(images[train], [captions[i] for i in train], images[val], [captions[i] for i in val],
                       image_size=opts["image_size"],
                       source=f"generated scenes ({opts['num_samples']:,} images, seed {seed})")

