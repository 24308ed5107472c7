"""The one set of limits on unpacking a zip, for training data and for Media uploads alike.

LAB_MAX_UNZIPPED_MB (default 2048) bounds what a zip's members may inflate to and LAB_MAX_ZIP_FILES
(default 100,000) how many members it may have; a zip beyond either is refused before anything is
unpacked, with a message that names the file, the figure and the setting. LAB_UNPACKED_BUDGET_MB (default
10,240) bounds the unpacked copies kept in LAB_HOME/cache: the least recently used go first.
"""

from __future__ import annotations

import os

_MB = 1024**2


def _setting(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, default)))
    except ValueError:
        return default


def max_unzipped_bytes() -> int:
    return _setting("LAB_MAX_UNZIPPED_MB", 2048) * _MB


def max_zip_files() -> int:
    return _setting("LAB_MAX_ZIP_FILES", 100_000)


def unpacked_budget_bytes() -> int:
    return _setting("LAB_UNPACKED_BUDGET_MB", 10 * 1024) * _MB


def check_zip_members(infos, name: str, *, error=ValueError, what: str = "files") -> None:
    """Refuse a zip whose members (zipfile.ZipInfo, directories left out) are too many or inflate too much."""
    if len(infos) > max_zip_files():
        raise error(f"{name} holds {len(infos):,} {what}; the limit is {max_zip_files():,} "
                    "(LAB_MAX_ZIP_FILES where the server is started)")
    declared = sum(info.file_size for info in infos)
    if declared > max_unzipped_bytes():
        raise error(f"{name} would unpack to {declared / _MB:,.0f} MB of {what}; the limit is "
                    f"{max_unzipped_bytes() / _MB:,.0f} MB (LAB_MAX_UNZIPPED_MB where the server is started)")
