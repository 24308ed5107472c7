"""Your own captioned images: a folder or a .zip holding the pictures and a `captions.csv`.

    captions.csv        image,caption            (a header row; one row per caption)
                        beach/001.jpg,A dog runs on the sand
                        beach/001.jpg,a brown dog on a beach   (several rows per image are fine)
    beach/001.jpg ...   image paths relative to the folder that holds captions.csv

captions.csv may sit at the top or inside one wrapping folder (as zipping a folder gives). Zips are
read member by member in memory (nothing is unpacked). A CSV naming images that are not there is
refused with a list of a few of them; undecodable images are skipped and counted. Images are
squashed to S x S (data.options.image_size) like the image folders, decoded once and cached.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import zipfile
from pathlib import Path, PurePosixPath

from core.data import register_dataset
from core.data.folder import safe_member_name
from core.data.scenes import DEFAULT_SIZE, CaptionData, split_indices
from core.data.roots import readable_path, shown_path
from core.errors import DataError
from core.options import Option

CSV_NAME = "captions.csv"
MAX_CSV_BYTES = 50 * 1024**2
MAX_IMAGE_BYTES = 50 * 1024**2
_MAX_DECODED_BYTES = 8 * 1024**3

FOLDER_OPTIONS = {
    "image_size": Option(DEFAULT_SIZE, "Images are resized to this square side in pixels", low=16, high=512),
    "val_fraction": Option(0.2, "Share of the images held out for validation (by image)", low=0.01, high=0.5),
}


class _Source:
    """Read-only access to the files of a folder or a zip, by POSIX path relative to captions.csv."""

    def __init__(self, path_text: str | None):
        if not path_text:
            raise DataError("data.path is empty: name a folder or .zip that holds captions.csv and the images")
        path = readable_path(path_text)
        if not path.exists():
            raise DataError(f"data path not found: {shown_path(path_text)}")
        self.label, self.zip, self.root = shown_path(path_text), None, None
        if path.is_dir():
            self.root = path.resolve()
            candidates = [self.root / CSV_NAME] + [d / CSV_NAME for d in sorted(self.root.iterdir()) if d.is_dir()]
            found = [c for c in candidates if c.is_file()]
            self.base = found[0].parent if found else None
            self.identity = f"{self.root}"
        elif path.suffix.lower() == ".zip":
            try:
                self.zip = zipfile.ZipFile(path)
                names = [i.filename for i in self.zip.infolist() if not i.is_dir()]
            except (zipfile.BadZipFile, OSError) as exc:
                raise DataError(f"{path.name} is not a readable zip file ({exc})") from None
            self.members = {n.replace("\\", "/"): n for n in names}
            tops = [n for n in self.members if PurePosixPath(n).name == CSV_NAME and n.count("/") <= 1
                    and not n.startswith("__MACOSX/")]
            tops.sort(key=lambda n: (n.count("/"), n))
            self.base = tops[0].rpartition("/")[0] if tops else None
            stat = path.stat()
            self.identity = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
        else:
            raise DataError(f"data path {path_text} is neither a folder nor a .zip file")
        if self.base is None:
            raise DataError(f"no {CSV_NAME} in {path_text}: put a {CSV_NAME} with columns image,caption at its top")

    def _member(self, relative: str) -> str | None:
        """The zip member name for a relative path, or None."""
        return self.members.get(f"{self.base}/{relative}" if self.base else relative)

    def exists(self, relative: str) -> bool:
        if self.zip is not None:
            return self._member(relative) is not None
        return self._inside(relative).is_file()

    def read(self, relative: str, limit: int) -> bytes:
        """At most limit + 1 bytes (so an oversized file is noticed without reading all of it)."""
        if self.zip is not None:
            with self.zip.open(self._member(relative)) as handle:
                return handle.read(limit + 1)
        with open(self._inside(relative), "rb") as handle:
            return handle.read(limit + 1)

    def _inside(self, relative: str) -> Path:
        """The file under the folder; a symlink pointing outside it counts as missing."""
        from core.errors import LabError
        from core.paths import safe_join
        try:
            return safe_join(self.root, str(self.base.relative_to(self.root) / relative))
        except LabError:
            return self.root / ".outside"

    def newest(self, names) -> int:
        """Newest modification time among the files (folders), for the cache key."""
        if self.zip is not None:
            return 0  # the zip's own size and mtime are in `identity`
        times = [os.stat(self.base / n).st_mtime_ns for n in names]
        return max(times + [os.stat(self.base / CSV_NAME).st_mtime_ns])


def read_captions(text: str, where: str) -> dict[str, list[str]]:
    """captions.csv text -> {image path: [captions]} in file order, or DataError saying what is wrong."""
    if not text.strip():
        raise DataError(f"{where} is empty: it needs a header row 'image,caption' and one row per caption")
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise DataError(f"{where} is not a valid CSV file ({exc})") from None
    header = [h.strip().lower() for h in rows[0]]
    if "image" not in header or "caption" not in header:
        raise DataError(f"{where} needs a header row with the columns image and caption; "
                        f"its first row is: {', '.join(rows[0])[:200]}")
    col_image, col_caption = header.index("image"), header.index("caption")
    captions: dict[str, list[str]] = {}
    bad, unsafe = [], []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue  # blank lines are harmless
        image = row[col_image].strip() if col_image < len(row) else ""
        caption = row[col_caption].strip() if col_caption < len(row) else ""
        if not image or not caption:
            bad.append(line)
            continue
        name = safe_member_name(image)
        if not name:  # absolute, climbs out with "..", or nothing but "."
            unsafe.append(image)
            continue
        captions.setdefault(name, []).append(caption)
    if unsafe:
        raise DataError(f"{where} names images outside its folder (absolute paths or '..'): "
                        + ", ".join(unsafe[:5]) + (f" and {len(unsafe) - 5} more" if len(unsafe) > 5 else ""))
    if bad:
        raise DataError(f"{where}: {len(bad)} row(s) lack an image or a caption (line "
                        + ", ".join(map(str, bad[:5])) + ("…" if len(bad) > 5 else "") + ")")
    if not captions:
        raise DataError(f"{where} has a header but no captions: add rows 'image,caption'")
    return captions


@register_dataset("captions-folder", description="Your own captioned images: a folder or .zip with captions.csv "
                  "(columns image, caption) and the images", channels=3, image_size=DEFAULT_SIZE, needs_path=True,
                  kind="captions", options=FOLDER_OPTIONS)
def build_captions_folder(cfg, *, seed: int) -> CaptionData:
    from core.data.cache import cached_tensors
    from core.options import resolve

    opts = resolve(cfg.options, FOLDER_OPTIONS)
    size = int(opts["image_size"])
    source = _Source(cfg.path)
    where = f"{CSV_NAME} in {shown_path(cfg.path)}"
    try:
        raw = source.read(CSV_NAME, MAX_CSV_BYTES)
    except (OSError, zipfile.BadZipFile, RuntimeError, ValueError, EOFError) as exc:
        raise DataError(f"{where} could not be read ({exc})") from None
    if len(raw) > MAX_CSV_BYTES:
        raise DataError(f"{where} is larger than {MAX_CSV_BYTES // 1024**2} MB")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{where} is not UTF-8 text; save it as UTF-8 CSV") from None
    captions = read_captions(text, where)
    names = list(captions)
    missing = [n for n in names if not source.exists(n)]
    if missing:
        raise DataError(f"{where} names {len(missing)} image(s) that are not there: "
                        + ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
    if len(names) * 3 * size * size > _MAX_DECODED_BYTES:
        raise DataError(f"{len(names):,} images at {size}x{size} need too much memory; lower image_size")

    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()
    key = f"captions-folder:{source.identity}:{len(names)}:{source.newest(names)}:{digest}:{size}"

    def build():
        x, ok = _decode(source, names, size)
        return {"images": x, "names": [n for n, good in zip(names, ok) if good], "skipped": len(names) - sum(ok)}

    data = cached_tensors(key, build)
    kept = data["names"]
    if not kept:
        raise DataError(f"none of the {len(names)} images named in {where} could be decoded")
    if len(kept) < 2:
        raise DataError(f"{where} needs at least two readable images (one to train on, one to validate)")
    train, val = split_indices(len(kept), opts["val_fraction"], seed)
    images = data["images"]
    return CaptionData(images[train], [captions[kept[i]] for i in train], images[val],
                       [captions[kept[i]] for i in val], image_size=size, skipped=int(data["skipped"]),
                       source=f"captioned folder {shown_path(cfg.path)} ({len(kept):,} images)")


def _decode(source: _Source, names: list[str], size: int):
    """(N_ok, 3, S, S) uint8 for the images that decode, and one ok-flag per name."""
    import numpy as np
    import torch

    from core.data.images import decode_image
    out, ok = [], []
    for name in names:
        try:
            payload = source.read(name, MAX_IMAGE_BYTES)
            if len(payload) > MAX_IMAGE_BYTES:
                raise ValueError("too large")
            out.append(decode_image(io.BytesIO(payload), size))
            ok.append(True)
        except Exception:  # noqa: BLE001  a bad file is skipped and counted, whatever went wrong
            ok.append(False)
    stacked = np.stack(out) if out else np.zeros((0, size, size, 3), dtype=np.uint8)
    return torch.from_numpy(stacked).permute(0, 3, 1, 2).contiguous(), ok
