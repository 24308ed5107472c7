"""Files a user uploads for training (a text corpus, a zipped image folder), kept under LAB_HOME/cache/uploads
and named by their content, so the same upload twice is one file and a run's data.path stays valid."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

from core.errors import DataError
from core.paths import atomic_write, cache_dir


def keep_upload(data: bytes, suffix: str) -> Path:
    """Write `data` once to uploads/<first 16 hex digits of its SHA-1><suffix>; return that path."""
    target = cache_dir("uploads") / f"{hashlib.sha1(data).hexdigest()[:16]}{suffix}"
    if not target.exists():
        atomic_write(target, lambda handle: handle.write(data))
    return target


def keep_zip_upload(data: bytes, filename: str = "upload.zip") -> Path:
    """An uploaded .zip, checked to be a readable zip before it is kept (what is inside is checked when a
    run opens it, by core.data.folder)."""
    if not data:
        raise DataError(f"{filename} is empty")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            archive.namelist()
    except (zipfile.BadZipFile, ValueError):
        raise DataError(f"{filename} is not a .zip file; zip a folder with train/<class>/ images inside") from None
    return keep_upload(data, ".zip")
