"""Memory or disk: how a run's images will reach the model, decided before anything is decoded.

Decoded images are uint8 (N, 3, S, S), N * 3 * S * S bytes. When that fits the memory budget they are
decoded once and kept in memory (core.data.loader.DeviceBatches); beyond it, a data set that can list its
files (DatasetInfo.files: a folder) is streamed from disk by DataLoader worker processes
(core.data.stream.StreamedBatches). `data.stream` forces either way.

The budget is the smaller of MAX_IN_MEMORY and a share of the memory available now (Linux's MemAvailable):
the decoded set is built next to the model, the optimiser and a copy made while splitting. The environment
variable LAB_MEMORY_BUDGET_MB overrides it (tests force the automatic choice with it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

BUDGET_VARIABLE = "LAB_MEMORY_BUDGET_MB"
MAX_IN_MEMORY = 8 * 1024**3  # the in-memory path's own limit (core.data.folder refuses beyond it)
MEMORY_SHARE = 0.5  # of the available memory: splitting copies the training images once, and the model needs room
MAX_WORKERS = 4  # decoding past 4 workers rarely pays on one GPU, and each worker holds its own prefetched batches


@dataclass(frozen=True)
class DataPlan:
    mode: str  # "memory" or "streamed"
    decoded_bytes: int  # the decoded uint8 images of every listed file: files * 3 * S * S
    files: int  # image files listed (0 when the data set does not list files)
    workers: int  # DataLoader worker processes when streamed (0: decoded in the training process)
    budget_bytes: int  # what the in-memory path may take on this machine now
    image_size: int
    disk_cache: bool = False  # streamed: decoded images kept on disk after the first epoch
    forced: bool = False  # data.stream chose the mode, not the budget
    listing: object = field(default=None, repr=False, compare=False)  # core.data.folder.ImageFiles, when listed

    @property
    def streamed(self) -> bool:
        return self.mode == "streamed"

    def describe(self) -> str:
        """'in memory, 1.2 GB' or 'streamed from disk, 2 workers, decoded cache on disk'."""
        if not self.streamed:
            return "in memory" + (f", {format_bytes(self.decoded_bytes)}" if self.decoded_bytes else "")
        if self.workers == 0:
            text = "streamed from disk, in the training process"
        else:
            text = f"streamed from disk, {self.workers} worker{'s' if self.workers != 1 else ''}"
        return text + (", decoded cache on disk" if self.disk_cache else "")


def data_plan(cfg, seed: int = 0, listing=None) -> DataPlan:
    """The plan for a DataConfig whose image size is settled (core.data.with_image_size). Lists the files
    (directory listings, nothing decoded) of a data set that can stream; `listing` reuses a listing already made
    (core.data.folder.ImageFiles)."""
    from core.data import dataset_info, image_size_of
    info = dataset_info(cfg.name)
    size = int(image_size_of(cfg))
    budget = memory_budget()
    workers = default_workers(getattr(cfg, "workers", None))
    stream = getattr(cfg, "stream", None)
    if info.files is None or not getattr(cfg, "path", None):
        return DataPlan("memory", 0, 0, 0, budget, size)  # nothing to stream: always decoded into memory
    listing = listing if listing is not None else info.files(cfg, seed)
    count = int(listing.listed)
    decoded = count * 3 * size * size
    streamed = decoded > budget if stream is None else bool(stream)
    if not streamed:
        return DataPlan("memory", decoded, count, 0, budget, size, forced=stream is not None, listing=listing)
    return DataPlan("streamed", decoded, count, workers, budget, size, disk_cache=bool(getattr(cfg, "disk_cache", False)),
                    forced=stream is not None, listing=listing)


STATS_SAMPLE = 256  # training images decoded for the normalisation statistics of a streamed run


class StreamedSplits:
    """A streamed run's data as the tasks read an ImageSplits (classes, labels, channels, image size, mean_std,
    skipped, source), with each split kept as files: nothing is decoded up front but a sample for statistics."""

    channels = 3

    def __init__(self, plan: DataPlan, name: str = "folder"):
        import torch

        from core.errors import DataError
        files = plan.listing
        if not files.train:
            raise DataError(f"data set '{name}' has no training images ({files.source})")
        if not files.val:
            raise DataError(f"data set '{name}' has no validation images ({files.source}); add a val/ folder "
                            "or more images, or raise data.val_fraction")
        self.train_files, self.val_files = list(files.train), list(files.val)
        self.classes, self.source, self.identity = list(files.classes), files.source, files.identity
        self.image_size = plan.image_size
        self.train_y = torch.tensor([label for _, label in self.train_files], dtype=torch.int64)  # (N,)
        self.val_y = torch.tensor([label for _, label in self.val_files], dtype=torch.int64)  # (M,)
        self.skipped = 0  # unreadable files found so far (by mean_std's sample); the batches count the rest

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def mean_std(self, count: int = STATS_SAMPLE) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and std of up to `count` training base images, evenly spaced in the (shuffled)
        training order, scaled to [0, 1] (core.data.splits.channel_mean_std)."""
        from concurrent.futures import ThreadPoolExecutor

        import torch

        from core.data.splits import channel_mean_std
        from core.data.stream import decode_file

        sample = self.train_files[::max(1, len(self.train_files) // count)][:count]

        def one(path):
            try:
                return decode_file(path, self.image_size)  # (3, S, S) uint8
            except Exception:  # noqa: BLE001  unreadable: skipped, as the batches skip it
                return None

        with ThreadPoolExecutor(max_workers=default_workers(), thread_name_prefix="stats") as pool:
            images = list(pool.map(one, [path for path, _ in sample]))
        good = [image for image in images if image is not None]
        self.skipped = len(images) - len(good)
        return channel_mean_std(torch.stack(good) if good else torch.zeros(0, 3, 1, 1, dtype=torch.uint8))


def memory_budget() -> int:
    """Bytes the decoded images may take in memory: LAB_MEMORY_BUDGET_MB when set, else the smaller of
    MAX_IN_MEMORY and MEMORY_SHARE of the available memory."""
    text = os.environ.get(BUDGET_VARIABLE, "").strip()
    if text:
        try:
            return max(0, int(float(text) * 1024**2))
        except ValueError:
            pass  # a malformed setting: the machine's own budget
    available = available_memory()
    return MAX_IN_MEMORY if available is None else min(MAX_IN_MEMORY, int(available * MEMORY_SHARE))


def available_memory() -> int | None:
    """Bytes of memory available now (Linux's MemAvailable), or None when unknown."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def default_workers(requested: int | None = None) -> int:
    """data.workers when set, else one worker per usable core, at most MAX_WORKERS (2 on a 2-core machine)."""
    if requested is not None:
        return max(0, int(requested))
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(MAX_WORKERS, cores))


def format_bytes(n: float) -> str:
    """12.3 MB: how sizes are written everywhere (the memory estimate, the Train form, the data plan)."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:,.0f} {unit}" if unit in ("B", "KB") else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} TB"
