"""Child process that decodes one video with PyAV and writes sampled frames to an .npz file.

Run as a script by `core.data.video_frames` (never imported by the app): a malformed file that makes
FFmpeg crash, hang or eat memory takes down only this process. It imports nothing from `core`,
so it starts in a fraction of a second without torch.

    python video_worker.py IN.mp4 OUT.npz --every-s 1 --max-frames 120 --size 256

Output: arrays frame_0..frame_{n-1} (H, W, 3) uint8 and times (n,) float64 seconds from the start of
the video stream. Errors: one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys

SEEK_GAP_S = 3.0  # sampling sparser than this seeks to each time instead of decoding every frame
MEMORY_LIMIT_BYTES = 8 * 1024**3  # address space; a hostile file fails with an error, not the machine


class DecodeError(Exception):
    pass


def _limit_memory() -> None:
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard == resource.RLIM_INFINITY or hard > MEMORY_LIMIT_BYTES:
            resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, hard))
    except (ImportError, ValueError, OSError):  # not on this platform: the time limit still holds
        pass


def _scaled(frame, size: int):
    """(H, W, 3) uint8 RGB with the longer side at most `size` (scaled by libswscale, not numpy)."""
    width, height = frame.width, frame.height
    scale = min(1.0, size / max(width, height))
    out_w, out_h = max(1, round(width * scale)), max(1, round(height * scale))
    return frame.reformat(width=out_w, height=out_h, format="rgb24").to_ndarray()


def _time_of(frame, stream, origin: float) -> float | None:
    if frame.pts is None or stream.time_base is None:
        return None
    return float(frame.pts * stream.time_base) - origin


def sample_sequential(container, stream, origin: float, every_s: float, max_frames: int, size: int):
    """Decode every frame and keep the first one at or after each multiple of every_s."""
    frames, times = [], []
    next_t = 0.0
    for index, frame in enumerate(container.decode(stream)):
        t = _time_of(frame, stream, origin)
        if t is None:  # no timestamps: fall back to the nominal frame rate
            rate = float(stream.average_rate or stream.guessed_rate or 25)
            t = index / rate
        if t + 1e-6 < next_t:
            continue
        frames.append(_scaled(frame, size))
        times.append(max(t, 0.0))
        if len(frames) >= max_frames:
            break
        while next_t <= t + 1e-6:
            next_t += every_s
    return frames, times


def sample_by_seeking(container, stream, origin: float, every_s: float, max_frames: int, size: int,
                      duration: float):
    """Seek to the key frame before each target time and decode forward to it: for sparse sampling."""
    frames, times = [], []
    target = 0.0
    while target < duration and len(frames) < max_frames:
        container.seek(int((target + origin) / stream.time_base), stream=stream, backward=True)
        picked = None
        for frame in container.decode(stream):
            t = _time_of(frame, stream, origin)
            if t is None:
                raise DecodeError("frames without timestamps")
            if t + 1e-6 >= target:
                picked = (frame, t)
                break
        if picked is None:
            break  # past the last frame
        frame, t = picked
        frames.append(_scaled(frame, size))
        times.append(max(t, 0.0))
        target = max(target + every_s, t + 1e-6)
    return frames, times


def decode(path: str, every_s: float, max_frames: int, size: int):
    import av

    try:
        container = av.open(path, mode="r")
    except Exception as exc:  # av.error.InvalidDataError and friends
        raise DecodeError(f"not a readable video ({_first_line(exc)})") from None
    with container:
        if not container.streams.video:
            raise DecodeError("the file has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame threading: several times faster on long clips
        origin = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        duration = None
        if stream.duration is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000  # microseconds
        if every_s >= SEEK_GAP_S and duration:
            try:
                return sample_by_seeking(container, stream, origin, every_s, max_frames, size, duration)
            except (DecodeError, av.error.FFmpegError):
                container.seek(0)  # some files cannot seek; read them from the start instead
        return sample_sequential(container, stream, origin, every_s, max_frames, size)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("source")
    parser.add_argument("output")
    parser.add_argument("--every-s", type=float, default=1.0)
    parser.add_argument("--max-frames", type=int, default=120)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args(argv)
    _limit_memory()
    import numpy as np
    try:
        frames, times = decode(args.source, args.every_s, args.max_frames, args.size)
    except DecodeError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except MemoryError:
        print("decoding needed more memory than allowed", file=sys.stderr)
        return 2
    except Exception as exc:  # FFmpeg errors mid-stream: corrupt packets, unsupported codec...
        print(f"{type(exc).__name__}: {_first_line(exc)}", file=sys.stderr)
        return 2
    arrays = {f"frame_{i}": frame for i, frame in enumerate(frames)}
    np.savez(args.output, times=np.asarray(times, dtype=np.float64), **arrays)
    return 0


if __name__ == "__main__":
    sys.exit(main())
