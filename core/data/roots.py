"""Which server folders a data path may name, and how a path is shown back to the user.

The app has no login, so a path typed into the Train form is read with the server's rights. Only paths
under the allowed roots are read: LAB_HOME/data, the lab's own uploads, and the folders listed in
LAB_DATA_ROOTS (separated by ':' on Linux and macOS, ';' on Windows). A link placed inside a root by
whoever runs the server is followed; a `..` in the typed path is refused outright.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.errors import DataError
from core.paths import cache_dir, lab_home, make_dirs

ROOTS_VARIABLE = "LAB_DATA_ROOTS"


def data_roots() -> list[Path]:
    """The folders data paths may lie in: LAB_HOME/data (created), the uploads folder, LAB_DATA_ROOTS."""
    roots = [make_dirs(lab_home() / "data"), uploads_dir()]
    for entry in os.environ.get(ROOTS_VARIABLE, "").split(os.pathsep):
        if entry.strip():
            roots.append(Path(os.path.abspath(Path(entry.strip()).expanduser())))
    return roots


def uploads_dir() -> Path:
    return cache_dir("uploads")


def readable_path(path_text: str, *, what: str = "data.path") -> Path:
    """The absolute path the user named, if it lies under an allowed root; DataError naming the setting
    otherwise. Existence is the caller's business (it knows what kind of file it wants)."""
    typed = Path(str(path_text)).expanduser()
    if ".." in typed.parts:
        raise DataError(f"{what}: '{path_text}' climbs out of its folder with '..'; give the folder's full path")
    path = Path(os.path.abspath(typed))
    roots = data_roots()
    for root in roots:
        for form in {root, Path(os.path.realpath(root))}:
            if path == form or form in path.parents:
                return path
    allowed = ", ".join(str(r) for r in roots if r != uploads_dir())
    raise DataError(f"{what}: {shown_path(path_text)} is outside the folders the lab may read ({allowed}). "
                    f"Move or link it into {roots[0]}, or add its folder to {ROOTS_VARIABLE} where the server "
                    "is started")


def shown_path(path_text) -> str:
    """A path as the user knows it: an upload by the name it was uploaded with, never its folder on the
    server; anything else as typed."""
    path = Path(str(path_text))
    try:
        inside = Path(os.path.abspath(path)).relative_to(uploads_dir())
    except ValueError:
        return str(path_text)
    return inside.parts[-1] if inside.parts else "the upload"
