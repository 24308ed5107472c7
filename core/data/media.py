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
from core.data.limits import check_zip_members, max_unzipped_bytes
from core.errors import InputError

MAX_UPLOAD_BYTES = 50 * 1024**2  # one image file (also each image inside a zip)
MAX_ZIP_BYTES = 500 * 1024**2  # the archive as uploaded; what it may inflate to is core.data.limits'
# The pixel budget. Decoding is the memory: a plain 64-megapixel PNG is 1.6 MB on disk and 192 MB decoded.
MAX_DECODE_PIXELS = 40_000_000  # one image at full size (a JPEG counts after Pillow's draft shrinks it)
MAX_REQUEST_PIXELS = 400_000_000  # all images of one upload (one request) together
KEEP_SIDE = 1024  # decoded images are shrunk to this longest side at once: enough to show and to classify


class PixelBudget:
    """Megapixels one upload may still decode; shared by the files (and zip members) of one request."""

    def __init__(self, limit: int = MAX_REQUEST_PIXELS):
        self.limit, self.spent = limit, 0

    def take(self, pixels: int, name: str) -> None:
        if self.spent + pixels > self.limit:
            raise InputError(f"{name} was not decoded: the images of this upload add up to more than "
                             f"{self.limit / 1e6:.0f} megapixels; upload fewer or smaller pictures at a time")
        self.spent += pixels

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


def open_image(data: bytes, name: str, *, max_bytes: int = MAX_UPLOAD_BYTES, keep_side: int = KEEP_SIDE,
               budget: PixelBudget | None = None) -> Image.Image:
    """Upload bytes -> a decoded RGB image at most `keep_side` pixels long, or InputError saying why not.

    A JPEG is decoded straight at a reduced scale (Pillow's draft); other formats are decoded whole,
    up to MAX_DECODE_PIXELS (and what `budget` has left), then shrunk, so no full-size copy outlives
    this call. Animated GIF/WEBP and multi-page TIFF give their first frame; EXIF rotation is applied.
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
        img.draft("RGB", (keep_side, keep_side))  # JPEG: decode at 1/2, 1/4 or 1/8 scale; others: no-op
    except Exception:  # noqa: BLE001  a header draft() cannot use: decode at full size, within the limits
        pass
    width, height = img.size
    if width * height > MAX_DECODE_PIXELS:
        raise InputError(f"{name} is {width:,} x {height:,} pixels ({width * height / 1e6:.0f} megapixels); "
                         f"pictures up to {MAX_DECODE_PIXELS / 1e6:.0f} megapixels are decoded (JPEG photos of "
                         "any size are fine). Scale it down and upload it again.")
    if budget is not None:
        budget.take(width * height, name)
    try:
        img.seek(0)  # the first frame of an animation
        img.load()
        rgb = to_rgb(img)
        if rgb is img and getattr(img, "n_frames", 1) > 1:
            rgb = img.copy()  # drop the other frames and the reference to the upload's bytes
        rgb.load()
        if max(rgb.size) > keep_side:
            rgb.thumbnail((keep_side, keep_side), Image.Resampling.BICUBIC)  # in place: the full size is freed
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(_bomb_message(name, str(exc))) from None
    except MemoryError:
        raise InputError(f"{name} needs more memory to decode than this machine can give") from None
    except Exception as exc:  # OSError "image file is truncated", SyntaxError "broken PNG file", zlib...
        raise InputError(f"{name} is truncated or corrupt and could not be decoded ({_short(exc)})") from None
    return rgb


def decode_uploads(files: list[tuple[str, bytes]]) -> list[tuple[str, Image.Image | InputError]]:
    """(name, image or InputError) for every uploaded file of one request, zips unpacked in memory, all
    within one PixelBudget and shrunk as they are decoded. The memory the decoding used is handed back to
    the system afterwards, so one large request does not leave the server holding it."""
    items: list[tuple[str, Image.Image | InputError]] = []
    budget = PixelBudget()
    try:
        for name, data in files:
            try:
                if name.lower().endswith(".zip"):
                    items.extend(images_from_zip(data, name, budget=budget))
                else:
                    items.append((name, open_image(data, name, budget=budget)))
            except InputError as exc:
                items.append((name, exc))
    finally:
        release_freed_memory()
    return items


def release_freed_memory() -> None:
    """Return freed heap pages to the system (glibc's malloc_trim). Decoding in a server thread frees its
    large pixel buffers into a per-thread malloc arena, which glibc keeps: 8 decoded 30-megapixel PNGs left
    about 190 MB held after they were freed. Elsewhere (no glibc) this does nothing."""
    import ctypes
    import ctypes.util
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


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


def images_from_zip(data: bytes, name: str, max_files: int = 500, budget: PixelBudget | None = None,
                    ) -> list[tuple[str, Image.Image | InputError]]:
    """Every image member of a zip (by extension), decoded in memory within the pixel budget (`budget`,
    shared with the request's other files), in archive order.

    A member that cannot be decoded yields its InputError in place of the image. Raises InputError
    for an empty, oversized or invalid archive, one with no images, more than `max_files` images
    (what one page classifies at once), or beyond core.data.limits (members, bytes once inflated).
    """
    budget = budget or PixelBudget()
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
    check_zip_members(members, name, error=InputError, what="images")
    if len(members) > max_files:
        raise InputError(f"{name} holds {len(members):,} images; at most {max_files:,} can be classified at once")
    most = max_unzipped_bytes()

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
            if inflated > most:
                raise InputError(f"{name} inflates to more than {_megabytes(most)} of images")
            try:
                results.append((label, open_image(payload, label, budget=budget)))
            except InputError as exc:
                results.append((label, exc))
            del payload  # one member's bytes at a time
    return results


