"""Untrusted uploads (bytes plus the name the user gave them) turned into images, with limits.

Every way an upload can be unusable ends in an `InputError` whose message names the file and says
what is wrong: empty, too large, not an image, a format we do not open, truncated or corrupt, or
too many pixels. Pillow's decompression-bomb guard stays on and only `PIL_FORMATS` are parsed, so
an exotic plugin never sees user bytes. Zip archives are read in memory, member by member: one bad
picture yields its own error and the others are still classified.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import PurePosixPath

from PIL import Image, UnidentifiedImageError

from core.data.images import PIL_FORMATS, is_image_name, to_rgb
from core.errors import InputError

MAX_UPLOAD_BYTES = 50 * 1024**2  # one image file (also each image inside a zip)
MAX_ZIP_BYTES = 500 * 1024**2  # the archive as uploaded
MAX_ZIP_UNCOMPRESSED_BYTES = 500 * 1024**2  # all image members together, once inflated

# Picture formats people upload that we deliberately do not open: recognising them by extension
# or magic bytes lets the message say "ICO is not supported" instead of "not an image".
_UNSUPPORTED_EXTENSIONS = {
    ".ico": "ICO", ".cur": "ICO", ".tga": "TGA", ".heic": "HEIC", ".heif": "HEIF", ".avif": "AVIF",
    ".psd": "PSD", ".svg": "SVG", ".jp2": "JPEG 2000", ".j2k": "JPEG 2000", ".ppm": "PPM", ".pgm": "PGM",
    ".pbm": "PBM", ".pcx": "PCX", ".dds": "DDS", ".icns": "ICNS", ".xbm": "XBM", ".eps": "EPS", ".pdf": "PDF",
    ".jxl": "JPEG XL", ".raw": "RAW", ".cr2": "RAW", ".nef": "RAW", ".dng": "RAW",
}
_MAGIC = (
    (b"\x00\x00\x01\x00", "ICO"), (b"8BPS", "PSD"), (b"%PDF", "PDF"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"), (b"\xff\x4f\xff\x51", "JPEG 2000"), (b"\xff\x0a", "JPEG XL"),
    (b"icns", "ICNS"), (b"DDS ", "DDS"), (b"<svg", "SVG"), (b"%!PS", "EPS"),
)
_ISO_BRANDS = {b"heic": "HEIC", b"heix": "HEIC", b"mif1": "HEIF", b"heif": "HEIF", b"avif": "AVIF", b"avis": "AVIF"}


def supported_formats_text() -> str:
    return ", ".join(PIL_FORMATS)


def _format_hint(data: bytes, name: str) -> str | None:
    """The name of a known but unsupported picture format, from the extension or magic bytes.

    The extension goes first: a few magic numbers are short (ICO's 00 00 01 00 also starts TGA files).
    """
    by_extension = _UNSUPPORTED_EXTENSIONS.get(PurePosixPath(name.lower()).suffix)
    if by_extension:
        return by_extension
    head = data[:16]
    for magic, label in _MAGIC:
        if head.startswith(magic):
            return label
    if head[4:8] == b"ftyp" and head[8:12] in _ISO_BRANDS:  # ISO media: HEIC/AVIF phone photos
        return _ISO_BRANDS[head[8:12]]
    return None


def _megabytes(n: int) -> str:
    return f"{n / 1024**2:.1f} MB"


def _bomb_message(name: str, detail: str = "", pixels: int | None = None) -> str:
    if pixels is None:
        found = re.search(r"\((\d+) pixels\)", detail)
        pixels = int(found.group(1)) if found else None
    limit = Image.MAX_IMAGE_PIXELS
    size = f" ({pixels:,} pixels)" if pixels else ""
    return (f"{name} has too many pixels{size} to decode safely; the limit is {limit:,} pixels "
            f"(about {limit / 1e6:.0f} megapixels). Scale the picture down and upload it again.")


def open_image(data: bytes, name: str, *, max_bytes: int = MAX_UPLOAD_BYTES) -> Image.Image:
    """Upload bytes -> a fully decoded RGB image, or InputError saying why not.

    Animated GIF/WEBP and multi-page TIFF give their first frame; EXIF rotation is applied.
    """
    if not data:
        raise InputError(f"{name} is empty (0 bytes)")
    if len(data) > max_bytes:
        raise InputError(f"{name} is {_megabytes(len(data))}; images may be at most {_megabytes(max_bytes)}")
    try:
        # Image.open parses only the header; it runs Pillow's bomb check on the declared size.
        img = Image.open(io.BytesIO(data), formats=PIL_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # The warning arrives as an exception only where warnings are errors (pytest -W error).
        raise InputError(_bomb_message(name, str(exc))) from None
    except UnidentifiedImageError:
        hint = _format_hint(data, name)
        if hint:
            raise InputError(f"{name}: {hint} images are not supported; "
                             f"upload one of: {supported_formats_text()}") from None
        raise InputError(f"{name} is not an image in a supported format ({supported_formats_text()})") from None
    except Exception as exc:  # a header so broken that the plugin itself fails (struct.error, SyntaxError...)
        raise InputError(f"{name} is corrupt and could not be read ({_short(exc)})") from None

    # Between MAX_IMAGE_PIXELS and twice that Pillow only warns; we refuse all of it, without
    # touching the process-wide warning filters (other threads decode too).
    limit = Image.MAX_IMAGE_PIXELS
    width, height = img.size
    if limit is not None and width * height > limit:
        raise InputError(_bomb_message(name, pixels=width * height))
    try:
        img.seek(0)  # the first frame of an animation
        img.load()
        rgb = to_rgb(img)
        if rgb is img and getattr(img, "n_frames", 1) > 1:
            rgb = img.copy()  # drop the other frames and the reference to the upload's bytes
        rgb.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(_bomb_message(name, str(exc))) from None
    except MemoryError:
        raise InputError(f"{name} needs more memory to decode than this machine can give") from None
    except Exception as exc:  # OSError "image file is truncated", SyntaxError "broken PNG file", zlib...
        raise InputError(f"{name} is truncated or corrupt and could not be decoded ({_short(exc)})") from None
    return rgb


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]


def _unsafe_member(filename: str) -> bool:
    """Absolute paths, drive letters and '..' parts: never followed, even though nothing is extracted."""
    normal = filename.replace("\\", "/")
    if normal.startswith("/") or re.match(r"^[A-Za-z]:", normal):
        return True
    return ".." in normal.split("/")


def _junk_member(filename: str) -> bool:
    """macOS resource forks (__MACOSX/, ._photo.jpg) look like images by name but are not."""
    parts = filename.replace("\\", "/").split("/")
    return "__MACOSX" in parts or parts[-1].startswith("._")


def images_from_zip(data: bytes, name: str, max_files: int = 500,
                    ) -> list[tuple[str, Image.Image | InputError]]:
    """Every image member of a zip (by extension), decoded in memory, in archive order.

    A member that cannot be decoded yields its InputError in place of the image. Raises InputError
    for an empty, oversized or invalid archive, one with no images, more than `max_files` images,
    or more than MAX_ZIP_UNCOMPRESSED_BYTES of images once inflated.
    """
    if not data:
        raise InputError(f"{name} is empty (0 bytes)")
    if len(data) > MAX_ZIP_BYTES:
        raise InputError(f"{name} is {_megabytes(len(data))}; archives may be at most {_megabytes(MAX_ZIP_BYTES)}")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise InputError(f"{name} is not a valid zip archive ({_short(exc)})") from None

    members = [info for info in infos if not info.is_dir() and is_image_name(info.filename)
               and not _unsafe_member(info.filename) and not _junk_member(info.filename)]
    if not members:
        raise InputError(f"{name} holds no images ({', '.join(PIL_FORMATS)} files by extension)")
    if len(members) > max_files:
        raise InputError(f"{name} holds {len(members):,} images; at most {max_files:,} can be classified at once")
    declared = sum(info.file_size for info in members)
    if declared > MAX_ZIP_UNCOMPRESSED_BYTES:
        raise InputError(f"{name} would inflate to {_megabytes(declared)} of images; "
                         f"the limit is {_megabytes(MAX_ZIP_UNCOMPRESSED_BYTES)}")

    results: list[tuple[str, Image.Image | InputError]] = []
    inflated = 0
    with archive:
        for info in members:
            label = info.filename
            try:
                # Read at most one byte past the limit: a header that lies about the size cannot
                # make us inflate more than that.
                with archive.open(info) as member:
                    payload = member.read(MAX_UPLOAD_BYTES + 1)
            except RuntimeError as exc:  # encrypted member
                results.append((label, InputError(f"{label} is encrypted in {name} ({_short(exc)})")))
                continue
            except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError, ValueError) as exc:
                results.append((label, InputError(f"{label} is damaged inside {name} ({_short(exc)})")))
                continue
            inflated += len(payload)
            if inflated > MAX_ZIP_UNCOMPRESSED_BYTES:
                raise InputError(f"{name} inflates to more than {_megabytes(MAX_ZIP_UNCOMPRESSED_BYTES)} of images")
            try:
                results.append((label, open_image(payload, label)))
            except InputError as exc:
                results.append((label, exc))
    return results


