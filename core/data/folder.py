"""Your own images: a folder or a .zip laid out like torchvision's ImageFolder.

Accepted layouts (class names are sorted like ImageFolder's, so label i means the same thing):

    root/train/<class>/*.jpg  [root/val|valid|validation|test/<class>/*.jpg]   official split
    root/<one folder>/train/<class>/...                                       e.g. a zipped folder
    root/<class>/*.jpg                                                        seeded val_fraction split

Images of any size and mode become (3, S, S) uint8, decoded once by a thread pool and cached. S is
data.image_size, or by default the folder's native size: the median shorter side of a sample of its training
images, capped at 224 (so a CIFAR-like folder trains at 32 px and photos at 224); unreadable files are counted in
`skipped`, never fatal. A folder too large for memory is streamed from disk instead (core.data.plan chooses,
core.data.stream reads): both paths take their file lists and splits from `list_folder` and `split_indices`. Zips are
checked member by member before anything is written (no absolute names, no `..`), then unpacked
once under LAB_HOME/cache/folders/<sha1 of path, size, mtime>.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from core.data import register_dataset
from core.data.limits import check_zip_members, unpacked_budget_bytes
from core.data.plan import MAX_IN_MEMORY  # the uint8 tensors must fit in memory (and on the device)
from core.data.roots import readable_path, shown_path
from core.errors import DataError
from core.paths import cache_dir

DEFAULT_SIZE = 64
_VAL_NAMES = ("val", "valid", "validation", "test")  # first one present is the validation split
_IGNORED_DIRS = ("__MACOSX",)  # macOS zip resource forks
# Reading one member can fail in these ways when its bytes are bad (CRC, zlib stream, password,
# unknown compression); the file is then skipped like any undecodable image.
_MEMBER_ERRORS = (zipfile.BadZipFile, zlib.error, RuntimeError, ValueError, NotImplementedError, EOFError)
_SMALL_FILE = 16 * 1024  # bytes; below this mean file size decoding runs on one thread (see decode_files)
_CHUNK = 64  # files per thread-pool task: amortises the per-task overhead on tiny images


def native_size(cfg) -> int:
    """The median shorter side of up to NATIVE_SAMPLE training images (headers only, nothing decoded), capped
    by core.data.image_size_of; DEFAULT_SIZE when none can be read."""
    from core.data import NATIVE_CAP
    root = open_source(cfg.path)
    train_dir, _ = find_splits(root)
    classes = class_names(train_dir)
    key = (str(train_dir), tuple((name, _mtime_ns(train_dir / name)) for name in classes))
    return _native_size(key, NATIVE_CAP)


NATIVE_SAMPLE = 200


@functools.lru_cache(maxsize=32)
def _native_size(key: tuple, cap: int) -> int:
    from PIL import Image
    train_dir = Path(key[0])
    files = [path for name, _ in key[1] for path, _ in walk_images(train_dir / name)]
    step = max(1, len(files) // NATIVE_SAMPLE)
    sides = []
    for path in files[::step][:NATIVE_SAMPLE]:
        try:
            with Image.open(path) as image:  # reads the header only
                sides.append(min(image.size))
        except (OSError, ValueError, Image.DecompressionBombError):
            continue  # unreadable: the decoder skips it later too
    if not sides:
        return DEFAULT_SIZE
    sides.sort()
    return min(cap, int(sides[len(sides) // 2]))


def _mtime_ns(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns  # a file added to or removed from the class folder changes it
    except OSError:
        return 0


@register_dataset("folder", description="Your own images: a folder or .zip with train/<class>/ (and val/ or test/)",
                  classes=None, channels=3, image_size=DEFAULT_SIZE, needs_path=True, native_size=native_size,
                  files=lambda cfg, seed: image_files(cfg, seed))
def build_folder(cfg, *, seed: int):
    import torch

    from core.data.cache import cached_tensors
    from core.data.splits import ImageSplits

    from core.data import image_size_of
    size = image_size_of(cfg)
    listing = list_folder(cfg)
    total = len(listing.files)
    if total * 3 * size * size > MAX_IN_MEMORY:
        raise DataError(f"{total:,} images at {size}x{size} need {total * 3 * size * size / 1e9:.1f} GB of memory; "
                        "lower data.image_size, or stream them from disk (data.stream, image classification)")

    def build():
        x, y, ok = decode_files(listing.files, size)  # every file once, in listing order, whatever the seed
        return {"x": x, "y": y, "ok": ok, "classes": listing.classes}

    data = cached_tensors(f"folder:v2:{listing.identity}:{size}", build)
    train_idx, val_idx = split_indices(listing, cfg, seed)
    # A file's row among the decoded images (N_ok, 3, S, S): the split is made on the file list, so a streamed
    # run of the same folder and seed trains and validates on the same files.
    ok = data["ok"]  # (N,) bool
    row = ok.long().cumsum(0) - 1  # (N,)

    def rows(indices: list[int]):
        index = torch.tensor(indices, dtype=torch.int64)
        return row[index[ok[index]]]  # the decoded rows of the files that decoded, in the split's order

    train_rows, val_rows = rows(train_idx), rows(val_idx)
    return ImageSplits(data["x"][train_rows], data["y"][train_rows], data["x"][val_rows], data["y"][val_rows],
                       classes=list(data["classes"]), channels=3, image_size=size, skipped=int((~ok).sum()),
                       source=listing.source)


# ---- which files, in which split ----------------------------------------------------------------

@dataclass
class FolderListing:
    """A folder's image files found by listing directories, nothing decoded."""
    files: list[tuple[str, int]]  # (path, label): train/ then the validation folder's, each sorted by class
    train_count: int  # files[:train_count] come from the training folder
    classes: list[str]
    has_val: bool  # an official validation folder with images (else val_fraction of train/ is held out)
    source: str  # where the data came from, in words
    identity: str  # folders, file count and newest mtime: changes when a file is added, removed or re-saved


@dataclass
class ImageFiles:
    """Each split as a file list, in the order and with the split the in-memory path uses (core.data.stream)."""
    train: list[tuple[str, int]]  # (path, label) in the seeded training order, data.limit applied
    val: list[tuple[str, int]]
    classes: list[str]
    source: str
    identity: str
    listed: int  # files found, before data.limit: what the in-memory path would decode


def list_folder(cfg) -> FolderListing:
    """Every image file of the folder (or unpacked zip) with its label; a DataError that says what is wrong with
    the layout when there is nothing to train on."""
    from core.data.images import IMAGE_EXTENSIONS

    root = open_source(cfg.path)
    train_dir, val_dir = find_splits(root)
    classes = class_names(train_dir)
    if not classes:
        where, kinds = _shown(cfg.path, root, train_dir), ", ".join(e[1:] for e in IMAGE_EXTENSIONS)
        if visible_dirs(train_dir):
            raise DataError(f"no images ({kinds}) in the class folders of {where}")
        raise DataError(f"no class folders in {where}: put the images in train/<class>/ folders "
                        "(and optionally val/<class>/), or in <class>/ folders")
    train_files, train_newest = _list_images(train_dir, classes, "train")
    val_files, val_newest = _list_images(val_dir, classes, val_dir.name) if val_dir else ([], 0)
    if val_dir is not None and not val_files:
        val_dir = None  # an empty val/ folder: hold out val_fraction of train/ instead
    if val_dir is not None:
        how = f"{train_dir.name}/ and {val_dir.name}/"
    else:
        how = f"{train_dir.name}/, {cfg.val_fraction:g} of it held out for validation"
    total, newest = len(train_files) + len(val_files), max(train_newest, val_newest)
    return FolderListing(train_files + val_files, len(train_files), classes, val_dir is not None,
                         source=f"folder {shown_path(cfg.path)} ({how})",
                         identity=f"{train_dir}:{val_dir or ''}:{total}:{newest}")


def split_indices(listing: FolderListing, cfg, seed: int) -> tuple[list[int], list[int]]:
    """(training indices in seeded order, validation indices) into listing.files: the validation folder as it
    is, or a seeded val_fraction of the training files (core.data.splits' own shuffle and split)."""
    import torch

    from core.data.splits import shuffle_pairs, split_train_val
    index = torch.arange(listing.train_count)
    if listing.has_val:
        train, _ = shuffle_pairs(index, index, seed)
        return train.tolist(), list(range(listing.train_count, len(listing.files)))
    train, _, val, _ = split_train_val(index, index, cfg.val_fraction, seed)
    return train.tolist(), val.tolist()


def image_files(cfg, seed: int) -> ImageFiles:
    """The folder's splits as file lists (the `files` hook of core.data: what a streamed run reads)."""
    listing = list_folder(cfg)
    train_idx, val_idx = split_indices(listing, cfg, seed)
    if cfg.limit is not None:
        train_idx = train_idx[:cfg.limit]  # a fair sample: the order is already shuffled
    return ImageFiles([listing.files[i] for i in train_idx], [listing.files[i] for i in val_idx],
                      listing.classes, listing.source, listing.identity, len(listing.files))


# ---- where the images are ---------------------------------------------------------------------

def open_source(path_text: str | None) -> Path:
    """The folder to read: the path itself, or where its zip was unpacked."""
    if not path_text:
        raise DataError("data.path is empty: name a folder of images or a .zip file")
    path = readable_path(path_text)
    if not path.exists():
        raise DataError(f"data path not found: {shown_path(path_text)}")
    if path.is_dir():
        return path.resolve()
    if path.is_file() and path.suffix.lower() == ".zip":
        return extract_zip(path.resolve())
    raise DataError(f"data path {shown_path(path_text)} is neither a folder nor a .zip file")


def visible_dirs(path: Path) -> list[Path]:
    """Sub-folders, sorted, without hidden ones, macOS debris or symlinks (which could point anywhere)."""
    try:
        with os.scandir(path) as entries:
            found = [Path(e.path) for e in entries if e.is_dir(follow_symlinks=False)
                     and not e.name.startswith(".") and e.name not in _IGNORED_DIRS]
    except OSError as exc:
        raise DataError(f"cannot read folder {path}: {exc.strerror or exc}") from None
    return sorted(found, key=lambda p: p.name)


def find_splits(root: Path) -> tuple[Path, Path | None]:
    """(train folder, validation folder or None) for any of the accepted layouts."""
    base = root
    for _ in range(3):  # step through wrapping folders such as the top folder of a zip
        if _child(base, "train") is not None:
            break
        subdirs = visible_dirs(base)
        if len(subdirs) == 1 and visible_dirs(subdirs[0]) and not _has_images(base):
            base = subdirs[0]
        else:
            break
    train = _child(base, "train")
    if train is None:
        return base, None  # class folders directly: split by val_fraction
    val = next((v for v in (_child(base, n) for n in _VAL_NAMES) if v is not None), None)
    return train, val


def _child(base: Path, name: str) -> Path | None:
    return next((d for d in visible_dirs(base) if d.name.lower() == name), None)


def _has_images(path: Path) -> bool:
    from core.data.images import is_image_name

    with os.scandir(path) as entries:
        return any(e.is_file() and is_image_name(e.name) for e in entries)


def class_names(split_dir: Path) -> list[str]:
    """Sorted names of the class folders that hold at least one image file (at any depth)."""
    return [d.name for d in visible_dirs(split_dir) if walk_files(d, first_only=True)]


def walk_images(top: Path, first_only: bool = False, keep=None) -> list[tuple[Path, int]]:
    """(path, mtime_ns) of image files (or files `keep(name)` accepts) under `top`, sorted; hidden
    files, symlinks and macOS zip debris are left out."""
    return [(Path(path), mtime) for path, mtime in walk_files(top, first_only, keep)]


def walk_files(top: Path, first_only: bool = False, keep=None) -> list[tuple[str, int]]:
    """walk_images with the paths as strings: a listing of 100,000 files spends most of its time making Paths."""
    from core.data.images import is_image_name

    keep = keep or is_image_name
    found, stack = [], [top]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for e in entries:
                if e.name.startswith(".") or e.is_symlink():
                    continue
                if e.is_dir():
                    if e.name not in _IGNORED_DIRS:
                        stack.append(e.path)
                elif keep(e.name):
                    found.append((e.path, e.stat().st_mtime_ns))
                    if first_only:
                        return found
    found.sort(key=lambda item: item[0].split(os.sep))  # the order of Paths (part by part), at the speed of strings
    return found


def _list_images(split_dir: Path, classes: list[str], split: str) -> tuple[list[tuple[str, int]], int]:
    """[(path, label)] for one split, and the newest modification time among its files."""
    index = {name: i for i, name in enumerate(classes)}
    unknown = [d.name for d in visible_dirs(split_dir) if d.name not in index and walk_files(d, first_only=True)]
    if unknown:
        raise DataError(f"{split}/ has class folders that train/ lacks: {', '.join(unknown[:5])}; "
                        "every validation class needs training images")
    files, newest = [], 0
    for name in classes:
        class_dir = split_dir / name
        if not class_dir.is_dir():
            continue  # a class missing from the validation split is fine
        for path, mtime in walk_files(class_dir):
            files.append((path, index[name]))
            newest = max(newest, mtime)
    return files, newest


def _shown(user_path, root: Path, folder: Path) -> str:
    """The folder as the user knows it: relative to their path, not to a cache folder they never saw."""
    try:
        relative = folder.relative_to(root).as_posix()
    except ValueError:
        return str(folder)
    return shown_path(user_path) + (f" (in {relative}/)" if relative != "." else "")


# ---- decoding ---------------------------------------------------------------------------------

def decode_files(files: list[tuple[str, int]], size: int):
    """Decode in a thread pool (Pillow releases the GIL while decoding and resizing).

    Returns images (N_ok, 3, size, size) uint8 and labels (N_ok,) int64 for the files that decoded, and which
    did (N,) bool: the others were empty, corrupt, unsupported or decompression bombs.
    """
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    import torch

    from core.data.images import decode_image

    n = len(files)
    out = np.zeros((n, size, size, 3), dtype=np.uint8)  # (N, S, S, 3): Pillow's layout
    ok = np.zeros(n, dtype=bool)

    def work(start: int) -> None:
        for i in range(start, min(start + _CHUNK, n)):
            try:
                out[i] = decode_image(files[i][0], size)
                ok[i] = True
            except Exception:  # noqa: BLE001  a bad file is skipped and counted, whatever went wrong
                pass

    workers = max(1, min(8, os.cpu_count() or 1))
    if _mean_size(files[:32]) < _SMALL_FILE:
        workers = 1  # thumbnails are Python-bound (parsing, not decoding): threads only contend for the GIL
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode") as pool:
        list(pool.map(work, range(0, n, _CHUNK)))
    labels = np.fromiter((label for _, label in files), dtype=np.int64, count=n)
    x = torch.from_numpy(out[ok]).permute(0, 3, 1, 2).contiguous()  # (N, S, S, 3) -> (N, 3, S, S)
    return x, torch.from_numpy(labels[ok]), torch.from_numpy(ok)


def _mean_size(files: list[tuple[str, int]]) -> float:
    sizes = []
    for path, _ in files:
        try:
            sizes.append(os.path.getsize(path))
        except OSError:
            pass  # vanished since listing: the decoder will count it as skipped
    return sum(sizes) / len(sizes) if sizes else 0.0


# ---- zips -------------------------------------------------------------------------------------

def safe_member_name(name: str) -> str | None:
    """The member's relative POSIX path, or None when it is absolute or climbs out with `..`."""
    clean = name.replace("\\", "/")
    if clean.startswith("/") or (len(clean) > 1 and clean[1] == ":"):  # /etc/x, C:/x, C:x
        return None
    parts = PurePosixPath(clean).parts
    if ".." in parts:
        return None
    return "/".join(p for p in parts if p not in ("", "."))


def extract_zip(zip_path: Path, *, keep=None, cache: str = "folders", what: str = "images") -> Path:
    """Unpack the zip's wanted files (images by default; `keep(name)` decides) once; later calls
    (same path, size and mtime) reuse the folder under LAB_HOME/cache/<cache>. The zip is refused before
    anything is written when a member's name is unsafe or it is beyond core.data.limits; a failed unpack
    leaves nothing behind, and old unpacked copies beyond the budget are removed, least recently used first."""
    from core.data.images import is_image_name
    from core.paths import safe_join

    keep = keep or is_image_name
    shown = shown_path(zip_path)
    stat = zip_path.stat()
    digest = hashlib.sha1(f"{zip_path}|{stat.st_size}|{stat.st_mtime_ns}".encode("utf-8")).hexdigest()
    parent = cache_dir(cache)
    dest = parent / digest
    if (dest / ".complete").is_file():
        (dest / ".complete").touch()  # last use, for the least-recently-used clean-up
        return dest
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{shown} is not a readable zip file ({exc})") from None
    with archive:
        # Check every member before writing anything: one bad name rejects the whole archive.
        wanted = []
        for info in archive.infolist():
            clean = safe_member_name(info.filename)
            if clean is None:
                raise DataError(f"{shown} was refused: member '{info.filename}' would be written outside "
                                "the folder it is unpacked into")
            if not info.is_dir() and clean and keep(clean):
                wanted.append((info, clean))
        check_zip_members([info for info, _ in wanted], shown, error=DataError, what=what)
        remove_unpacked(parent, keep_free=sum(info.file_size for info, _ in wanted), spare=dest)
        # Unpack into a private folder and rename it into place: a crash never leaves a half folder
        # that a later call would take for a whole one.
        tmp = Path(tempfile.mkdtemp(prefix=f"{digest}.", suffix=".part", dir=parent))
        try:
            made = set()
            for info, clean in wanted:
                folder, _, name = clean.rpartition("/")
                if folder not in made:  # resolve each folder once: resolving per file costs seconds
                    safe_join(tmp, folder or ".").mkdir(parents=True, exist_ok=True)
                    made.add(folder)
                target = tmp / folder / name
                try:
                    with archive.open(info) as src, open(target, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
                except _MEMBER_ERRORS:
                    target.write_bytes(b"")  # corrupt or encrypted member: an empty file, counted as skipped
            (tmp / ".source").write_text(str(zip_path))  # which zip this copy came from (deleting a run)
            (tmp / ".complete").touch()
            if (dest / ".complete").is_file():
                shutil.rmtree(tmp)  # another process finished the same unpack first
                return dest
            if dest.exists():
                shutil.rmtree(dest)  # an unfinished unpack from a crashed process
            os.replace(tmp, dest)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            from core.paths import storage_error
            translated = storage_error(exc, then="try again")
            if translated is not exc:
                raise translated from None
            raise DataError(f"could not unpack {shown}: {exc.strerror or exc}") from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return dest


STALE_PART_S = 3600.0  # an unpack folder this old that never completed belongs to a process that died
RECENT_USE_S = 3600.0  # a copy used this recently may be read by a running job: never removed


def remove_unpacked(parent: Path, *, keep_free: int = 0, spare: Path | None = None) -> list[Path]:
    """Make room for `keep_free` more bytes within the budget of unpacked copies in `parent`: remove
    unfinished unpacks of dead processes, then whole copies, least recently used first (a copy's
    .complete file is touched on each use). Copies used in the last hour stay. Returns what went."""
    import time

    now, removed, copies = time.time(), [], []
    for entry in parent.iterdir() if parent.is_dir() else []:
        if not entry.is_dir() or entry == spare:
            continue
        marker = entry / ".complete"
        if not marker.is_file():
            if now - entry.stat().st_mtime > STALE_PART_S:
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
            continue
        copies.append((marker.stat().st_mtime, _tree_bytes(entry), entry))
    total = sum(size for _, size, _ in copies) + keep_free
    for used, size, entry in sorted(copies, key=lambda c: c[0]):
        if total <= unpacked_budget_bytes():
            break
        if now - used < RECENT_USE_S:
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
        total -= size
    return removed


def remove_unpacked_copies_of(zip_path: Path) -> None:
    """Forget the unpacked copies of a zip that is going away (its run was deleted)."""
    for folder in (cache_dir("folders"), cache_dir("video-folders")):
        for entry in folder.iterdir():
            if entry.is_dir() and (entry / ".source").is_file() and (entry / ".source").read_text() == str(zip_path):
                shutil.rmtree(entry, ignore_errors=True)


def _tree_bytes(top: Path) -> int:
    total = 0
    for folder, _, files in os.walk(top):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(folder, name))
            except OSError:
                pass
    return total
