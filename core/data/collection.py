"""Collections: image data sets gathered in the browser, one class at a time (Teachable Machine's way).

A collection is a folder under LAB_HOME/data/collections laid out as the `folder` data set reads it:

    <name>/collection.json              class order (as added) and the runs trained on it
    <name>/train/<class>/<stamp>.jpg    every photo, shrunk to KEEP_SIDE and stored as JPEG

Collection and class names are typed by users: they become folder names only after `clean_name` has
refused separators, `..`, hidden (dot) names and control characters, and every path is checked to stay
inside the collections folder. Any script (Chinese included) is fine. Pictures arrive as untrusted bytes
(camera shots, uploads, zips of photos) and are decoded through `core.data.media.decode_uploads`, with
its size and pixel limits, before anything is written.
"""

from __future__ import annotations

import io
import json
import math
import os
import secrets
import shutil
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from core.config import RunConfig
from core.data.images import is_image_name
from core.errors import DataError, InputError
from core.paths import RUN_ID_PATTERN, atomic_write, lab_home, make_dirs, safe_join

MIN_IMAGES = 8  # photos per class before a collection may train: fewer leave nothing to validate on
KEEP_SIDE = 320  # stored photos' longest side: 2.5x the largest training size, small enough to list fast
JPEG_QUALITY = 90
MAX_NAME_LENGTH = 60
INDEX_FILE = "collection.json"
TRAIN_SIZE = 64  # from scratch: a small CNN on 64 px photos learns a few classes in under a minute on a CPU
PRETRAINED_MODEL, PRETRAINED_SIZE = "mobilenet_v3_small", 160  # fast on a CPU; only its new head trains
TARGET_STEPS = 200  # optimiser steps a run aims for, whatever the collection's size (within EPOCHS)
EPOCHS = (10, 40)  # few photos make short epochs, and each epoch ends with an evaluation and a checkpoint
_FORBIDDEN = set('/\\:*?"<>|')  # path separators and what Windows and zip tools refuse in a file name
_RESERVED = {"__macosx"}  # folders the folder data set skips


@dataclass(frozen=True)
class Collection:
    name: str
    path: Path  # LAB_HOME/data/collections/<name>

    @property
    def train_dir(self) -> Path:
        return self.path / "train"


@dataclass
class Added:
    """What `add_images` did: the stored file names, and one message per picture it refused."""
    saved: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class NameProblem(DataError):
    """A collection or class name that cannot be used. `reason` (empty, long, characters, dot, reserved, taken)
    and `values` let an interface say the same in another language; the message is the English."""

    def __init__(self, message: str, reason: str, **values):
        super().__init__(message)
        self.reason, self.values = reason, values


# ---- names ------------------------------------------------------------------------------------------

def clean_name(text, what: str = "class") -> str:
    """A user-typed name that is safe as one folder name (NFC, trimmed, inner spaces collapsed); DataError
    saying what is wrong otherwise."""
    name = " ".join(unicodedata.normalize("NFC", str(text or "")).split())
    if not name:
        raise NameProblem(f"give the {what} a name", "empty")
    if len(name) > MAX_NAME_LENGTH:
        raise NameProblem(f"the {what} name '{name[:20]}…' is {len(name)} characters long; at most "
                          f"{MAX_NAME_LENGTH} are allowed", "long", length=len(name), limit=MAX_NAME_LENGTH)
    bad = sorted({c for c in name if c in _FORBIDDEN or unicodedata.category(c).startswith("C")})
    if bad:
        shown = " ".join(repr(c)[1:-1] for c in bad)
        raise NameProblem(f"the {what} name '{name}' may not contain {shown}: use letters, digits, spaces, "
                          "'-' or '_'", "characters", chars=shown)
    if name.startswith("."):
        raise NameProblem(f"the {what} name '{name}' may not start with '.'", "dot")
    if name.casefold() in _RESERVED:
        raise NameProblem(f"'{name}' is reserved for other files; choose another {what} name", "reserved",
                          name=name)
    return name


# ---- collections ------------------------------------------------------------------------------------

def collections_root() -> Path:
    return make_dirs(lab_home() / "data" / "collections")


def list_collections() -> list[str]:
    """Names of the collections, sorted without regard to case."""
    root = collections_root()
    names = [e.name for e in os.scandir(root) if e.is_dir(follow_symlinks=False) and not e.name.startswith(".")]
    return sorted(names, key=str.casefold)


def create_collection(name: str) -> Collection:
    """A new, empty collection; DataError when the name is unusable or taken (case ignored)."""
    name = clean_name(name, "collection")
    taken = {n.casefold(): n for n in list_collections()}
    if name.casefold() in taken:
        raise NameProblem(f"a collection called '{taken[name.casefold()]}' already exists; open it or choose "
                          "another name", "taken", other=taken[name.casefold()])
    collection = Collection(name, safe_join(collections_root(), name))
    make_dirs(collection.train_dir)
    _write_index(collection, {"classes": [], "runs": []})
    return collection


def open_collection(name: str) -> Collection:
    clean = clean_name(name, "collection")
    path = safe_join(collections_root(), clean)
    if not path.is_dir():
        raise DataError(f"there is no collection called '{clean}'")
    return Collection(clean, path)


def delete_collection(collection: Collection) -> None:
    """Remove the collection's folder with every photo in it (runs trained on it keep their checkpoints)."""
    shutil.rmtree(open_collection(collection.name).path)


def _read_index(collection: Collection) -> dict:
    try:
        index = json.loads((collection.path / INDEX_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        index = {}  # missing or damaged: the folders are the truth, the order is rebuilt from them
    if not isinstance(index, dict):
        index = {}
    index.setdefault("classes", [])
    index.setdefault("runs", [])
    return index


def _write_index(collection: Collection, index: dict) -> None:
    text = json.dumps(index, ensure_ascii=False, indent=1).encode("utf-8")
    atomic_write(collection.path / INDEX_FILE, lambda handle: handle.write(text))


# ---- classes ----------------------------------------------------------------------------------------

def class_names(collection: Collection) -> list[str]:
    """The classes in the order they were added (folders the index does not know come last, sorted)."""
    train = make_dirs(collection.train_dir)
    present = {e.name for e in os.scandir(train) if e.is_dir(follow_symlinks=False) and not e.name.startswith(".")
               and _usable_name(e.name)}
    ordered = [n for n in _read_index(collection)["classes"] if n in present]
    return ordered + sorted(present - set(ordered), key=str.casefold)


def add_class(collection: Collection, name: str) -> str:
    """Create the class's folder; returns the name as stored. DataError for a bad or duplicate name."""
    name = clean_name(name)
    existing = class_names(collection)
    _check_unique(name, existing)
    make_dirs(_class_dir(collection, name, must_exist=False))
    index = _read_index(collection)
    index["classes"] = [n for n in existing if n != name] + [name]
    _write_index(collection, index)
    return name


def rename_class(collection: Collection, old: str, new: str) -> str:
    source = _class_dir(collection, old)
    new = clean_name(new)
    if new == source.name:
        return new
    existing = class_names(collection)
    _check_unique(new, [n for n in existing if n != source.name])
    target = _class_dir(collection, new, must_exist=False)
    if target.exists() and target != source:  # only the case differs on a case-insensitive disk
        raise NameProblem(f"a class called '{new}' already exists", "taken", other=new)
    os.replace(source, target)
    index = _read_index(collection)
    index["classes"] = [new if n == source.name else n for n in existing]
    _write_index(collection, index)
    return new


def remove_class(collection: Collection, name: str) -> None:
    """Delete the class with all its photos."""
    folder = _class_dir(collection, name)
    shutil.rmtree(folder)
    index = _read_index(collection)
    index["classes"] = [n for n in index["classes"] if n != folder.name]
    _write_index(collection, index)


def _check_unique(name: str, existing: list[str]) -> None:
    for other in existing:
        if other.casefold() == name.casefold():
            raise NameProblem(f"there is already a class called '{other}'; class names must differ "
                              "(capitals do not count)", "taken", other=other)


def _class_dir(collection: Collection, name: str, *, must_exist: bool = True) -> Path:
    clean = clean_name(name)
    folder = safe_join(collection.train_dir, clean)
    if folder.parent != collection.train_dir.resolve():
        raise DataError(f"the class name '{clean}' does not name one folder")
    if must_exist and not folder.is_dir():
        raise DataError(f"the collection '{collection.name}' has no class called '{clean}'")
    return folder


# ---- photos -----------------------------------------------------------------------------------------

def add_images(collection: Collection, class_name: str, files: list[tuple[str, bytes]]) -> Added:
    """Decode uploads (name, bytes) within the upload limits (a .zip adds every picture inside) and store
    each good one as a new JPEG in the class; a bad picture is refused with its own message and the
    others are still stored."""
    from core.data.media import decode_uploads

    folder = _class_dir(collection, class_name)
    added = Added()
    for name, image in decode_uploads(list(files)):
        if isinstance(image, Exception):
            added.errors.append(str(image))
        else:
            added.saved.append(_store_image(folder, image))
    return added


def add_image(collection: Collection, class_name: str, data: bytes, name: str = "camera shot") -> str:
    """One picture (a camera shot); returns its file name. InputError when the bytes are no usable image."""
    added = add_images(collection, class_name, [(name, data)])
    if added.errors or not added.saved:
        raise InputError(added.errors[0] if added.errors else f"{name} holds no image")
    return added.saved[0]


def _store_image(folder: Path, image) -> str:
    from PIL import Image

    picture = image.convert("RGB") if image.mode != "RGB" else image
    if max(picture.size) > KEEP_SIDE:
        picture = picture.copy()
        picture.thumbnail((KEEP_SIDE, KEEP_SIDE), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=JPEG_QUALITY)
    payload = buffer.getvalue()
    while True:  # the stamp sorts by time; the random part makes two shots in one millisecond distinct
        now = time.time()
        name = f"{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}-{int(now * 1000) % 1000:03d}-" \
               f"{secrets.token_hex(3)}.jpg"
        if not (folder / name).exists():
            break
    atomic_write(folder / name, lambda handle: handle.write(payload))
    return name


def image_files(collection: Collection, class_name: str) -> list[Path]:
    """The class's photos, newest first."""
    folder = _class_dir(collection, class_name)
    found = [Path(e.path) for e in os.scandir(folder)
             if e.is_file(follow_symlinks=False) and not e.name.startswith(".") and is_image_name(e.name)]
    return sorted(found, key=lambda p: p.name, reverse=True)


def remove_image(collection: Collection, class_name: str, file_name: str) -> None:
    folder = _class_dir(collection, class_name)
    if Path(file_name).name != file_name or file_name.startswith(".") or not is_image_name(file_name):
        raise DataError(f"'{file_name}' is not a photo of the class '{folder.name}'")
    path = folder / file_name
    if not path.is_file():
        raise DataError(f"the class '{folder.name}' has no photo called '{file_name}'")
    path.unlink()


def counts(collection: Collection) -> dict[str, int]:
    """Photos per class, in class order (a class removed meanwhile, e.g. from another tab, is left out)."""
    found = {}
    for name in class_names(collection):
        try:
            found[name] = len(image_files(collection, name))
        except DataError:
            continue
    return found


def _usable_name(name: str) -> bool:
    """A folder made by hand whose name the page could not handle (too long, a ':' ...) is not a class."""
    try:
        return clean_name(name) == name
    except DataError:
        return False


# ---- training ---------------------------------------------------------------------------------------

def shortfalls(class_counts: dict[str, int], min_images: int = MIN_IMAGES) -> dict[str, int]:
    """The classes with fewer than `min_images` photos, with their counts."""
    return {name: n for name, n in class_counts.items() if n < min_images}


def check_trainable(collection: Collection, min_images: int = MIN_IMAGES) -> dict[str, int]:
    """The counts when the collection can train; DataError saying what to add otherwise."""
    found = counts(collection)
    if len(found) < 2:
        raise DataError(f"the collection '{collection.name}' has {len(found)} class"
                        f"{'' if len(found) == 1 else 'es'}; add at least 2 classes to train a classifier")
    short = shortfalls(found, min_images)
    if short:
        listed = ", ".join(f"'{name}' has {n}" for name, n in short.items())
        raise DataError(f"every class needs at least {min_images} photos to train: {listed}; "
                        "take or upload more photos of them")
    return found


def training_config(collection: Collection, *, pretrained: bool = False, mirror: bool = True,
                    device: str = "auto", min_images: int = MIN_IMAGES) -> RunConfig:
    """An image classifier for the collection, sized to train in about a minute on a laptop CPU.

    From scratch: the classic conv-pool CNN on 64 px photos. `pretrained`: MobileNetV3-Small's ImageNet
    features with only a new head trained (ask core.models.imagenet.pretrained_weights_problem first).
    `mirror` flips photos at random while training; turn it off when left and right differ between classes.
    """
    found = check_trainable(collection, min_images)
    size = PRETRAINED_SIZE if pretrained else TRAIN_SIZE
    batch = 8  # small batches: more steps per (short) epoch
    val_fraction = 0.2
    train_size = max(1, int(sum(found.values()) * (1 - val_fraction)))
    per_epoch = max(1, train_size // batch)
    target = TARGET_STEPS // 2 if pretrained else TARGET_STEPS  # a head on fixed features needs fewer
    epochs = min(EPOCHS[1], max(EPOCHS[0], math.ceil(target / per_epoch)))
    model = ({"name": PRETRAINED_MODEL, "pretrained": True, "freeze_backbone": True} if pretrained
             else {"name": "cnn", "hidden": 64, "dropout": 0.3})
    return RunConfig.from_dict({
        "name": f"collect · {collection.name}",
        "task": "classification",
        "data": {"name": "folder", "path": str(collection.path), "image_size": size, "val_fraction": val_fraction,
                 "augment_crop": True, "crop_padding": size // 10, "augment_flip": bool(mirror)},
        "model": model,
        "optim": {"optimizer": "adamw" if pretrained else "adam", "lr": 2e-3 if pretrained else 1e-3,
                  "weight_decay": 1e-4, "schedule": "cosine", "label_smoothing": 0.1,
                  "batch_size": batch, "epochs": epochs},
        "device": device,
        "log_every": max(1, min(10, per_epoch)),
    })


def remember_run(collection: Collection, run_id: str, class_counts: dict[str, int] | None = None) -> None:
    """Note that `run_id` was trained on the collection, with the photo counts it saw."""
    index = _read_index(collection)
    runs = [r for r in index["runs"] if isinstance(r, dict) and r.get("id") != run_id]
    runs.append({"id": run_id, "at": time.time(), "counts": dict(class_counts or counts(collection))})
    index["runs"] = runs[-50:]
    _write_index(collection, index)


def remembered_runs(collection: Collection) -> list[dict]:
    """{"id", "at", "counts"} of the runs trained on the collection, newest first."""
    runs = [r for r in _read_index(collection)["runs"]
            if isinstance(r, dict) and isinstance(r.get("id"), str) and RUN_ID_PATTERN.match(r["id"])]
    return sorted(runs, key=lambda r: float(r.get("at") or 0.0), reverse=True)
