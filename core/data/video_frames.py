"""Videos: frames sampled from an untrusted upload in a child process with a time limit.

FFmpeg is a large C library fed untrusted bytes; a bad file can crash it, hang it or make it
allocate without end. So decoding runs in `video_worker.py`, a separate Python process with a
memory cap, started per clip and killed when it exceeds `timeout_s`. It writes the sampled frames
to an .npz file (plain uint8 arrays, loaded without pickle); this process only ever sees pixels.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

from core.errors import InputError

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mov", ".avi", ".mkv")
MAX_VIDEO_BYTES = 500 * 1024**2
WORKER = Path(__file__).with_name("video_worker.py")


def is_video_name(name: str) -> bool:
    return name.lower().endswith(VIDEO_EXTENSIONS)


def _worker_command(source: str, output: str, every_s: float, max_frames: int, size: int) -> list[str]:
    # The worker runs as a script, not `-m core.data...`: a bare interpreter starts in a fraction of a second.
    return [sys.executable, str(WORKER), source, output, "--every-s", repr(float(every_s)),
            "--max-frames", str(int(max_frames)), "--size", str(int(size))]


def sample_frames(data: bytes | str | os.PathLike, *, name: str | None = None, every_s: float = 1.0,
                  max_frames: int = 120, size: int = 256, timeout_s: float = 60,
                  ) -> list[tuple[float, Image.Image]]:
    """One RGB frame per `every_s` seconds: [(time in seconds, image with longer side <= size)].

    `data` is the uploaded bytes (named by `name`, whose extension picks the container) or a path.
    Raises InputError when the file is empty, too large, not a supported video, has no video
    stream, cannot be decoded, decodes to no frames, crashes the decoder or takes too long.
    """
    if every_s <= 0 or max_frames < 1 or size < 8 or timeout_s <= 0:
        raise InputError(f"frame sampling needs every_s > 0, max_frames >= 1, size >= 8 and timeout_s > 0 "
                         f"(got {every_s}, {max_frames}, {size}, {timeout_s})")
    is_path = not isinstance(data, (bytes, bytearray, memoryview))
    label = name or (Path(data).name if is_path else "the video")
    suffix = Path(label).suffix.lower()
    if suffix and suffix not in VIDEO_EXTENSIONS:
        raise InputError(f"{label}: '{suffix}' videos are not supported; use one of: {', '.join(VIDEO_EXTENSIONS)}")
    if is_path:
        path = Path(data)
        if not path.is_file():
            raise InputError(f"{label}: no such file")
        byte_count = path.stat().st_size
    else:
        byte_count = len(data)
    if byte_count == 0:
        raise InputError(f"{label} is empty (0 bytes)")
    if byte_count > MAX_VIDEO_BYTES:
        raise InputError(f"{label} is {byte_count / 1024**2:.0f} MB; videos may be at most "
                         f"{MAX_VIDEO_BYTES / 1024**2:.0f} MB")

    with tempfile.TemporaryDirectory(prefix="lab-video-") as tmp:
        if is_path:
            source = str(Path(data).resolve())
        else:
            source = os.path.join(tmp, "input" + (suffix or ".mp4"))  # the extension helps FFmpeg probe
            with open(source, "wb") as handle:
                handle.write(bytes(data))
        output = os.path.join(tmp, "frames.npz")
        command = _worker_command(source, output, every_s, max_frames, size)
        try:
            done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:  # subprocess.run has killed the child already
            raise InputError(f"decoding {label} took longer than {timeout_s:g} s, the time limit; try a shorter "
                             "clip or sample fewer frames") from None
        if done.returncode != 0:  # the decoder names the file it read: say the user's name, not ours
            reason = _reason(done).replace(f"'{source}'", label).replace(source, label).replace(tmp, "")
            raise InputError(f"could not decode {label}: {reason}")
        frames = _read_frames(output, label, size)
    if not frames:
        raise InputError(f"could not decode {label}: it holds no video frames")
    return frames


def _reason(done: subprocess.CompletedProcess) -> str:
    if done.returncode < 0:
        return f"the decoder crashed (signal {-done.returncode}); the file is probably damaged"
    lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
    return lines[-1][:300] if lines else f"the decoder failed (exit status {done.returncode})"


def _read_frames(output: str, label: str, size: int) -> list[tuple[float, Image.Image]]:
    import numpy as np

    if not os.path.isfile(output):
        raise InputError(f"could not decode {label}: the decoder wrote no frames")
    with np.load(output, allow_pickle=False) as npz:
        times = npz["times"]
        frames = []
        for index, t in enumerate(times):
            pixels = npz[f"frame_{index}"]  # (H, W, 3) uint8
            if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3 or max(pixels.shape[:2]) > size:
                raise InputError(f"could not decode {label}: the decoder returned a malformed frame")
            frames.append((float(t), Image.fromarray(pixels)))
    return frames


