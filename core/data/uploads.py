"""Files a user uploads for training (a text corpus, a zipped image folder), kept under LAB_HOME/cache/uploads
as <first 16 hex digits of the content's SHA-1>/<the name it was uploaded with>: the same upload twice is
one file, a run's data.path stays valid, and messages can name the file as the user knows it."""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from pathlib import Path

from core.data.limits import check_zip_members
from core.data.roots import uploads_dir
from core.errors import DataError
from core.paths import atomic_write

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._ ()\-\u00a0-\uffff]")


def keep_upload(data: bytes, filename: str) -> Path:
    """Write `data` once to uploads/<hash>/<clean filename>; return that path."""
    name = _UNSAFE_NAME.sub("_", Path(str(filename)).name).strip(" .") or "upload"
    target = uploads_dir() / hashlib.sha1(data).hexdigest()[:16] / name[:120]
    if not target.exists():
        atomic_write(target, lambda handle: handle.write(data))
    return target


def keep_zip_upload(data: bytes, filename: str = "upload.zip") -> Path:
    """An uploaded .zip, checked to be a readable zip within the unpacking limits before it is kept (the
    files inside are checked when a run opens it, by core.data.folder)."""
    if not data:
        raise DataError(f"{filename} is empty")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError):
        raise DataError(f"{filename} is not a .zip file; zip a folder with train/<class>/ images inside") from None
    check_zip_members([i for i in infos if not i.is_dir()], filename, error=DataError)
    return keep_upload(data, filename if filename.lower().endswith(".zip") else f"{filename}.zip")
