"""Image files streamed from disk by DataLoader worker processes, for data sets too large to decode into memory.

`StreamedBatches` serves a list of (path, label) with the batch-source contract of
core.data.loader.DeviceBatches, and its reproducibility by construction:
  - an epoch's order is a permutation from a CPU generator seeded with (seed, epoch);
  - a sample's augmentation comes from a generator seeded with (seed, epoch, sample index),
so the batches depend neither on the worker count nor on where an epoch starts: `epoch(e, start_batch=k)`
yields exactly batches k.. of `epoch(e)`. Every global batch is cut with core.world.shard_bounds, as
DeviceBatches cuts it.

A worker reads a file's bytes, decodes it (torchvision for 8-bit JPEG and PNG, Pillow for what torchvision
would decode differently), and squashes it to the S x S base image the in-memory path makes
(core.data.images.decode_image), so a model trained streamed sees what inference feeds it. Images stay uint8
through the workers; normalisation is one addcmul on the training device. An unreadable file is dropped from
its batch and counted in `skipped`, never fatal. The optional decoded cache on disk lets
epochs after the first read base images instead of decoding them (DecodedCache).
"""

from __future__ import annotations

import io
import math
import random
import warnings
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from core.data.loader import derive_seed, normaliser
from core.world import shard_bounds

# torchvision 0.29 deprecates its image decoders in favour of TorchCodec, which this project does not ship yet;
# they still work, and a warning per file would bury everything else in a test run's output.
warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities of TorchVision",
                        category=DeprecationWarning)

CROP_SCALE = (0.6, 1.0)  # RandomResizedCrop's area range: a modest zoom, the object stays in view
CROP_RATIO = (3 / 4, 4 / 3)
IN_FLIGHT_BYTES = 256 * 1024**2  # prefetched uint8 batches held by all workers together, roughly


def decode_file(path, size: int, box: tuple[int, int, int, int] | None = None) -> torch.Tensor:
    """A file -> its base image (3, size, size) uint8, squashed to a square like core.data.images.decode_image;
    with `box` (top, left, height, width in the base image's pixels), that window of it resized to the full size,
    cut from the decoded file directly so a random-resized crop costs one resize, not two.

    Raises for an empty, corrupt, unsupported or bomb-sized file (callers skip it). Pillow reads the header
    first (its decompression-bomb guard, the allowed formats); 8-bit JPEG and PNG without transparency are then
    decoded by torchvision (EXIF rotation applied), the rest by Pillow exactly as the in-memory path does
    (transparency over white, 16-bit greys scaled, CMYK and palettes converted).
    """
    from PIL import Image
    from torchvision.io import ImageReadMode, decode_image
    from torchvision.transforms.v2 import functional as F

    from core.data.images import PIL_FORMATS
    from core.data.images import decode_image as pillow_decode

    data = Path(path).read_bytes()
    with Image.open(io.BytesIO(data), formats=PIL_FORMATS) as probe:  # the header only: nothing decoded yet
        fmt, mode, transparent = probe.format, probe.mode, "transparency" in probe.info
    if fmt in ("JPEG", "PNG") and mode in ("RGB", "L") and not transparent:
        try:
            image = decode_image(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB,
                                 apply_exif_orientation=True)  # (3, H, W)
        except RuntimeError:
            image = None  # Pillow has the last word, as on the in-memory path
        if image is not None and image.dtype == torch.uint8:  # a 16-bit PNG comes back uint16: Pillow's job
            return squash(image, size, box)
    array = pillow_decode(io.BytesIO(data), size)  # (S, S, 3), read-only: Pillow's own buffer
    image = torch.tensor(array).permute(2, 0, 1)
    if box is not None:
        image = F.resized_crop(image, *box, [size, size], antialias=True)
    return image.contiguous()


def squash(image: torch.Tensor, size: int, box: tuple[int, int, int, int] | None = None) -> torch.Tensor:
    """A decoded file (3, H, W) uint8 -> its base image (3, size, size), or the `box` window of the base image
    resized to the full size, in one resize either way."""
    from torchvision.transforms.v2 import functional as F
    if box is None:
        return F.resize(image, [size, size], antialias=True).contiguous()
    # the squash scales each axis on its own, so the base image's window maps to a window of the file
    sy, sx = image.shape[-2] / size, image.shape[-1] / size
    top, left, height, width = box
    return F.resized_crop(image, round(top * sy), round(left * sx), max(1, round(height * sy)),
                          max(1, round(width * sx)), [size, size], antialias=True).contiguous()


def crop_box(size: int, rng: random.Random) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a random window of an S x S image: CROP_SCALE of the area, CROP_RATIO aspect,
    drawn from `rng` as torchvision's RandomResizedCrop draws them."""
    for _ in range(10):
        area = size * size * rng.uniform(*CROP_SCALE)
        aspect = math.exp(rng.uniform(math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1])))
        w, h = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
        if 0 < w <= size and 0 < h <= size:
            return rng.randint(0, size - h), rng.randint(0, size - w), h, w
    return 0, 0, size, size  # after ten misses: the whole image, as torchvision falls back


def augment(image: torch.Tensor, rng: random.Random, crop: bool, flip: bool) -> torch.Tensor:
    """(3, S, S) uint8 -> the same shape: a random resized crop (crop_box) and a horizontal flip of half the
    samples, drawn from `rng` in that order."""
    from torchvision.transforms.v2 import functional as F

    if crop:
        size = image.shape[-1]
        image = F.resized_crop(image, *crop_box(size, rng), [size, size], antialias=True)
    if flip and rng.random() < 0.5:
        image = F.horizontal_flip(image)
    return image.contiguous()


class FileImages(Dataset):
    """Item (epoch, index) -> (index, base image (3, S, S) uint8 augmented for that epoch, or None, label).

    Paths are kept in one numpy byte array rather than a list of Python objects: a forked worker that touched
    a million list entries would copy their pages (reference counts are writes)."""

    def __init__(self, files: Sequence[tuple], size: int, *, seed: int = 0, augment_crop: bool = False,
                 augment_flip: bool = False, cache=None):
        self.paths = np.array([str(path).encode("utf-8") for path, _ in files], dtype=np.bytes_)  # (N,)
        self.labels = np.array([int(label) for _, label in files], dtype=np.int64)  # (N,)
        self.size, self.seed = int(size), int(seed)
        self.crop, self.flip = bool(augment_crop), bool(augment_flip)
        self.cache = cache  # DecodedCache or None
        self.jpeg_bytes = False  # True: JPEGs leave the workers undecoded, for one batched decode on the device

    def __len__(self) -> int:
        return len(self.labels)

    def base(self, index: int) -> torch.Tensor | None:
        """The file's base image (3, S, S) uint8, from the decoded cache when it holds it; None when unreadable."""
        if self.cache is not None:
            hit, image = self.cache.get(index)
            if hit:
                return image
        try:
            image = decode_file(self.paths[index].decode("utf-8"), self.size)
        except Exception:  # noqa: BLE001  a bad file is skipped and counted, whatever went wrong
            image = None
        if self.cache is not None:
            self.cache.put(index, image)
        return image

    def __getitem__(self, key: tuple[int, int]):
        epoch, index = key
        rng = random.Random(derive_seed(self.seed, epoch, index))
        if self.jpeg_bytes and self.cache is None:
            raw = jpeg_bytes(self.paths[index].decode("utf-8"))
            if raw is not None:  # (bytes, crop window, flip): StreamedBatches finishes it on the device
                box = crop_box(self.size, rng) if self.crop else None
                return index, (raw, box, self.flip and rng.random() < 0.5), int(self.labels[index])
        if self.crop and self.cache is None:  # the crop is cut while decoding (one resize); the flip follows
            try:
                image = decode_file(self.paths[index].decode("utf-8"), self.size, crop_box(self.size, rng))
            except Exception:  # noqa: BLE001  a bad file is skipped and counted, whatever went wrong
                return index, None, int(self.labels[index])
            return index, augment(image, rng, False, self.flip), int(self.labels[index])
        image = self.base(index)
        if image is not None and (self.crop or self.flip):
            image = augment(image, rng, self.crop, self.flip)
        return index, image, int(self.labels[index])


def jpeg_bytes(path: str) -> torch.Tensor | None:
    """The file's bytes (N,) uint8 when it is a JPEG torchvision decodes as the in-memory path would (8-bit RGB or
    grey); None for anything else, which is decoded in the worker as usual."""
    from PIL import Image

    from core.data.images import PIL_FORMATS
    try:
        data = Path(path).read_bytes()
        with Image.open(io.BytesIO(data), formats=PIL_FORMATS) as probe:  # its header: the bomb guard, the format
            if probe.format != "JPEG" or probe.mode not in ("RGB", "L"):
                return None
    except Exception:  # noqa: BLE001  unreadable: the worker's own decode skips and counts it
        return None
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


def collate(items: list) -> tuple:
    """Items -> (images (B, 3, S, S) uint8, labels (B,) int64, indices of unreadable files); (None, None, bad)
    when nothing in the batch could be read. default_collate stacks straight into shared memory in a worker.
    A batch holding undecoded JPEGs (see FileImages.jpeg_bytes) keeps its images as a list, with their indices
    as a fourth element, for StreamedBatches to decode on the device."""
    good = [(index, image, label) for index, image, label in items if image is not None]
    bad = [index for index, image, _ in items if image is None]
    if not good:
        return None, None, bad
    labels = torch.tensor([label for _, _, label in good])
    if any(isinstance(image, tuple) for _, image, _ in good):
        return [image for _, image, _ in good], labels, bad, [index for index, _, _ in good]
    return default_collate([image for _, image, _ in good]), labels, bad


class _EpochBatches:
    """The DataLoader's batch sampler: the (epoch, index) keys of the batches the current epoch still has to
    serve, set before each pass (it stays in this process; persistent workers only receive the keys)."""

    def __init__(self):
        self.batches: list[list[tuple[int, int]]] = []

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class StreamedBatches:
    """A list of (path, label) served as (images float32 (B, 3, S, S) = (x / 255 - mean) / std, labels int64
    (B,)) on `device`, decoded by `workers` DataLoader processes (0: in this process).

    One pass at a time: the workers are shared, so starting an epoch abandons any unfinished one (as the trainer
    does after a stop request). Augmentation: a random resized crop of the base image when `augment_crop` (its
    own kind of crop: DeviceBatches' padded crop needs the whole set in memory), a horizontal flip when
    `augment_flip`."""

    def __init__(self, files: Sequence[tuple], *, image_size: int, batch_size: int, device, mean: Sequence[float],
                 std: Sequence[float], shuffle: bool = True, drop_last: bool = False, augment_crop: bool = False,
                 augment_flip: bool = False, seed: int = 0, shard: tuple[int, int] = (0, 1), workers: int = 0,
                 disk_cache: bool = False, cache_identity: str = "", device_decode: bool | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        cache = None
        if disk_cache:
            cache = open_decoded_cache(cache_identity, files, image_size)  # None when the disk has no room
        self.dataset = FileImages(files, image_size, seed=seed, augment_crop=augment_crop, augment_flip=augment_flip,
                                  cache=cache)
        self.device = torch.device(device)
        self._scale, self._shift = normaliser(mean, std, 3, self.device)
        # JPEGs decoded in one batched call on the GPU (nvJPEG) instead of one by one in the workers; a decoded
        # cache needs the decoded pixels in the workers, so it turns this off
        self.dataset.jpeg_bytes = (self.device.type == "cuda" if device_decode is None else device_decode) \
            and cache is None
        self.batch_size = int(batch_size)
        self.shuffle, self.drop_last, self.seed = bool(shuffle), bool(drop_last), int(seed)
        self.shard = shard  # (rank, ranks): this process takes its part of every global batch (core.world)
        self.workers = max(0, int(workers))
        self.bad: set[int] = set()  # indices of the files found unreadable so far
        self._sampler = _EpochBatches()
        self._loader: DataLoader | None = None  # made on first use: no worker starts before an epoch is asked for

    @property
    def num_samples(self) -> int:
        return len(self.dataset)

    @property
    def skipped(self) -> int:
        """Files found unreadable so far (each counted once, however many epochs met it)."""
        return len(self.bad)

    @property
    def disk_cache(self) -> bool:
        return self.dataset.cache is not None

    def __len__(self) -> int:
        n, b = len(self.dataset), self.batch_size
        return n // b if self.drop_last else (n + b - 1) // b

    def order(self, epoch: int) -> list[int]:
        """The epoch's sample order (N,): seeded by (seed, epoch) like DeviceBatches.order."""
        if not self.shuffle:
            return list(range(len(self.dataset)))
        g = torch.Generator().manual_seed(derive_seed(self.seed, epoch))
        return torch.randperm(len(self.dataset), generator=g).tolist()

    def epoch(self, epoch: int, start_batch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield (images (B, 3, S, S) float32, labels (B,) int64) for batches start_batch.. of `epoch`; a batch
        whose files were all unreadable is left out."""
        non_blocking = self.device.type == "cuda"  # pinned batches copy while the previous step computes
        for images, labels in self.decoded(epoch, start_batch):
            images = images.to(self.device, non_blocking=non_blocking)  # (B, 3, S, S) uint8
            yield torch.addcmul(self._shift, images, self._scale), labels.to(self.device, non_blocking=non_blocking)

    def decoded(self, epoch: int, start_batch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The same batches as `epoch` before they reach the device: (images (B, 3, S, S) uint8, labels (B,)) as
        the workers deliver them (what bench/data_scale.py times against decoding alone)."""
        if start_batch < 0:
            raise ValueError(f"start_batch must be >= 0, got {start_batch}")
        n, b, count = len(self.dataset), self.batch_size, len(self)
        if start_batch >= count:
            return
        order = self.order(epoch)
        keys = []
        for i in range(start_batch, count):
            lo, hi = shard_bounds(i * b, min((i + 1) * b, n), self.shard)
            keys.append([(epoch, order[j]) for j in range(lo, hi)])
        self._sampler.batches = keys
        for images, labels, bad, *decode_here in self._get_loader():
            self.bad.update(bad)
            if decode_here:
                images, labels = self._decode_on_device(images, labels, decode_here[0])
            if images is not None:
                yield images, labels

    def _decode_on_device(self, items: list, labels: torch.Tensor, indices: list[int]):
        """Finish a batch whose JPEGs came undecoded: one batched decode_jpeg on the device, then each image's
        crop window (or squash) and flip there. A file the decoder refuses is dropped and counted like any other."""
        from torchvision.io import ImageReadMode, decode_jpeg
        from torchvision.transforms.v2 import functional as F

        raw = [item[0] for item in items if isinstance(item, tuple)]
        read = dict(mode=ImageReadMode.RGB, device=self.device, apply_exif_orientation=True)
        try:
            decoded = iter(decode_jpeg(raw, **read))
        except RuntimeError:  # one bad file fails the batched call: decode them one by one to find it
            decoded = iter([_decode_or_none(data, read) for data in raw])
        images, kept = [], []
        for position, item in enumerate(items):
            if isinstance(item, tuple):
                image = next(decoded)
                if image is None:
                    self.bad.add(indices[position])
                    continue
                _, box, flip = item
                image = squash(image, self.dataset.size, box)
                item = F.horizontal_flip(image) if flip else image
            images.append(item.to(self.device))
            kept.append(position)
        if not images:
            return None, None
        return torch.stack(images), labels[kept]

    def _get_loader(self) -> DataLoader:
        if self._loader is None:
            extra = {}
            if self.workers:
                batch_bytes = self.batch_size * 3 * self.dataset.size ** 2
                extra = {"persistent_workers": True,  # forked once, reused every epoch
                         "prefetch_factor": max(2, min(8, IN_FLIGHT_BYTES // max(1, self.workers * batch_bytes)))}
            self._loader = DataLoader(self.dataset, batch_sampler=self._sampler, num_workers=self.workers,
                                      collate_fn=collate, pin_memory=self.device.type == "cuda", **extra)
        return self._loader

    def close(self) -> None:
        """Stop the worker processes now rather than when this object is collected (dropping the loader's last
        reference shuts its workers down)."""
        self._loader = None


def _decode_or_none(data: torch.Tensor, read: dict) -> torch.Tensor | None:
    from torchvision.io import decode_jpeg
    try:
        return decode_jpeg(data, **read)
    except RuntimeError:
        return None


# ---- the decoded cache on disk ---------------------------------------------------------------------

_EMPTY, _FILLED, _UNREADABLE = 0, 1, 2  # a file's state byte


class DecodedCache:
    """Base images (N, 3, S, S) uint8 in one file and a state byte per file (N,) in another, both numpy memmaps
    under LAB_HOME/cache/streamed/<key>/. Each index is written by one worker at a time (an epoch holds it once),
    pixels first, then its state byte: a worker killed in between leaves the state empty, and the file is
    decoded again, never read half-written. The pixels file is allocated in full when made, so a disk filling up
    later cannot fault a worker's write (a sparse mapping would die of SIGBUS)."""

    def __init__(self, folder: Path, count: int, size: int):
        self.folder, self.count, self.size = folder, int(count), int(size)
        self._pixels = self._state = None  # opened in the process that uses them (each worker its own mapping)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_pixels": None, "_state": None}  # a memmap would be pickled as a copy

    def _open(self) -> None:
        if self._pixels is None:
            shape = (self.count, 3, self.size, self.size)
            self._pixels = np.memmap(self.folder / "pixels.u8", dtype=np.uint8, mode="r+", shape=shape)
            self._state = np.memmap(self.folder / "state.u8", dtype=np.uint8, mode="r+", shape=(self.count,))

    def get(self, index: int) -> tuple[bool, torch.Tensor | None]:
        """(known, image): (True, (3, S, S) uint8) when filled, (True, None) when known unreadable, (False, None)."""
        self._open()
        state = int(self._state[index])
        if state == _FILLED:
            return True, torch.from_numpy(np.array(self._pixels[index]))  # a copy: the mapping stays read-only here
        return state == _UNREADABLE, None

    def put(self, index: int, image: torch.Tensor | None) -> None:
        self._open()
        if image is not None:
            self._pixels[index] = image.numpy()
        self._state[index] = _FILLED if image is not None else _UNREADABLE  # after the pixels, never before

    def filled(self) -> int:
        self._open()
        return int(np.count_nonzero(self._state))


def open_decoded_cache(identity: str, files: Sequence[tuple], size: int) -> DecodedCache | None:
    """The cache of these files at this size (made empty when new), or None when the disk has no room for it.
    Keyed by the source's identity (folder, count, newest mtime), the size and a hash of the file list."""
    import hashlib
    import os
    import shutil
    import tempfile

    from core.paths import cache_dir

    listing = hashlib.sha1()
    for path, label in files:
        listing.update(f"{path}\t{int(label)}\n".encode("utf-8"))
    key = hashlib.sha1(f"{identity}|{size}|{listing.hexdigest()}".encode("utf-8")).hexdigest()
    parent = cache_dir("streamed")
    folder, count = parent / key, len(files)
    cache = DecodedCache(folder, count, size)
    nbytes = count * 3 * size * size

    def whole() -> bool:
        pixels, state = folder / "pixels.u8", folder / "state.u8"
        return pixels.is_file() and state.is_file() and pixels.stat().st_size == nbytes \
            and state.stat().st_size == count

    if whole():
        return cache
    if folder.exists() and not whole():
        shutil.rmtree(folder, ignore_errors=True)  # left by an older layout: made again
    # Made in a private folder and renamed into place, so no process ever opens a half-made cache.
    tmp = Path(tempfile.mkdtemp(prefix=f"{key}.", suffix=".part", dir=parent))
    try:
        with open(tmp / "pixels.u8", "wb") as handle:
            try:
                os.posix_fallocate(handle.fileno(), 0, max(1, nbytes))
            except (AttributeError, OSError) as exc:
                if getattr(exc, "errno", None) == 28 or shutil.disk_usage(parent).free < nbytes:  # ENOSPC
                    raise OSError(28, "no room for the decoded cache") from None
                handle.truncate(nbytes)  # a file system without fallocate: checked for room above
        (tmp / "state.u8").write_bytes(bytes(count))
        try:
            os.replace(tmp, folder)
        except OSError:
            if not whole():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process (a rank of the same run) made it first
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        return None  # no room or not writable: the run decodes every epoch instead
    return cache
