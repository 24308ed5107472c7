"""Reading the user's own text files for training: one file, a folder, or a .zip, with the same rules for all
(used by the text classification and sequence-to-sequence data sets).

    files, shown = read_text_files(cfg.path, suffixes=(".txt",), max_file_bytes=1 << 20)
    for name, data in files: ...     # name inside the folder or zip ("train/pos/1.txt"; a lone file: its name)

- hidden files and folders, macOS's __MACOSX and anything outside the suffixes are left out;
- in a folder, a link pointing outside it is not followed; in a zip, members with unsafe names are left out and
  the zip is checked against core.data.limits before anything is read;
- a file longer than `max_file_bytes` is read up to that size (decode it with `decode_utf8(data, cut=True)`),
  and all files together may not pass `max_total_bytes` (a DataError says so, before anything is read).

`SkipLog` counts what a data set skips and keeps the first reasons, each naming the file and line.
"""

from __future__ import annotations

import zipfile

from core.errors import DataError

KEPT_REASONS = 50


class SkipLog:
    """What was skipped: `count` in all, the first KEPT_REASONS reasons ("file:line: why") in `reasons`."""

    def __init__(self):
        self.count, self.reasons = 0, []

    def add(self, reason: str) -> None:
        self.count += 1
        if len(self.reasons) < KEPT_REASONS:
            self.reasons.append(reason)


def wanted(relative: str, suffixes: tuple[str, ...]) -> bool:
    parts = relative.split("/")
    hidden = any(part.startswith(".") or part == "__MACOSX" for part in parts)
    return not hidden and parts[-1].lower().endswith(suffixes)


def read_text_files(path_text: str | None, *, suffixes: tuple[str, ...], max_file_bytes: int,
                    max_total_bytes: int = 512 << 20, what: str = "text files") -> tuple[list[tuple[str, bytes]], str]:
    """([(name, bytes)] in name order, the path as the user knows it); DataError for a missing path, an unreadable
    zip, too much data, or no wanted file at all."""
    from core.data.folder import safe_member_name
    from core.data.limits import check_zip_members
    from core.data.roots import readable_path, shown_path
    if not path_text:
        raise DataError(f"data.path is empty: upload a file or .zip of {what}, or give the path of one")
    path, shown = readable_path(path_text), shown_path(path_text)
    found: list[tuple[str, int, object]] = []  # (name, size, how to open it)
    archive = None
    if path.is_file() and path.suffix.lower() == ".zip":
        try:
            archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise DataError(f"{shown} is not a readable zip file ({exc})") from None
        infos = [i for i in archive.infolist() if not i.is_dir()]
        check_zip_members(infos, shown, error=DataError)
        for info in infos:
            name = safe_member_name(info.filename)
            if name and wanted(name, suffixes):
                found.append((name, info.file_size, info))
    elif path.is_file():
        found.append((path.name, path.stat().st_size, path))
    elif path.is_dir():
        root = path.resolve()
        for file in path.rglob("*"):
            relative = file.relative_to(path).as_posix()
            if file.is_file() and wanted(relative, suffixes) and root in file.resolve().parents:
                found.append((relative, file.stat().st_size, file))
    else:
        raise DataError(f"data.path: nothing at '{shown}'; upload a file or .zip of {what}, or give the path of one")
    try:
        found.sort(key=lambda entry: entry[0])
        if not found:
            raise DataError(f"{shown} holds no {what} ({', '.join(suffixes)})")
        if sum(size for _, size, _ in found) > max_total_bytes:
            raise DataError(f"{shown}: the {what} hold more than {max_total_bytes >> 20} MB; use a part of them")
        return [(name, _read(archive, source, max_file_bytes, name)) for name, _, source in found], shown
    finally:
        if archive is not None:
            archive.close()


def _read(archive, source, limit: int, name: str) -> bytes:
    try:
        if archive is not None:
            with archive.open(source) as handle:
                return handle.read(limit)
        with open(source, "rb") as handle:
            return handle.read(limit)
    except (zipfile.BadZipFile, OSError, RuntimeError, EOFError) as exc:  # corrupt or encrypted member
        raise DataError(f"cannot read {name} ({exc})") from None


def decode_utf8(data: bytes, *, cut: bool = False) -> str:
    """Bytes -> text (a BOM dropped, Windows line ends made \\n). With `cut` (the bytes were cut at a size limit), a
    character split by the cut is dropped rather than called undecodable. UnicodeDecodeError otherwise."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if not (cut and exc.start >= len(data) - 3 and exc.reason == "unexpected end of data"):
            raise
        text = data[:exc.start].decode("utf-8")
    return text.replace("\r\n", "\n")
