"""Your own videos: a folder or .zip with train/<class>/*.mp4 (and optional val/<class>/), returned as
core.data.clips.VideoSplits like every video data set.

Layouts are those of the image folder data set (core.data.folder): root/train/<class>/ with an
optional val|valid|validation|test/<class>/, a wrapping top folder, or class folders directly
(then data.val_fraction is held out). Each clip becomes T frames sampled evenly over its length,
squashed to S x S RGB: uint8 (N, T, 3, S, S), decoded once and cached.

Decoding untrusted video can crash, hang or exhaust FFmpeg, so it runs in child processes built on
core/data/video_worker.py (the same memory cap and frame sampler; that file imports nothing
from core, so a child starts without torch). One child decodes many clips in turn and reports each
on its stdout; a clip that takes longer than the time limit gets its child killed, a clip that
crashes its child is skipped, and a fresh child carries on with the rest. Unreadable clips are
counted in `skipped`, never fatal, unless no clip at all can be read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from core.data import register_dataset
from core.data.roots import shown_path
from core.errors import ConfigError, DataError
from core.options import Option, resolve

DEFAULT_FRAMES, DEFAULT_SIZE = 8, 64
CLIP_TIMEOUT_S = 60.0  # per clip, in the child
STARTUP_S = 120.0  # seconds a decoder process may take to start before it counts as broken
_REPO_ROOT = Path(__file__).resolve().parents[2]  # the child runs from here, so `core` imports
_WORKER_FILE = Path(__file__).with_name("video_worker.py")
_MAX_DECODED_BYTES = 8 * 1024**3
_SCAN_FRAMES = 600  # clips without a known duration: decode at most this many frames, then sample

OPTIONS = {
    "frames": Option(DEFAULT_FRAMES, "Frames sampled evenly from each clip (T)", low=2, high=64,
                     label="Frames per clip"),
    "size": Option(DEFAULT_SIZE, "Frame width and height in pixels (frames are squashed to a square)",
                   low=16, high=256, label="Frame size"),
}


# ---- frames to clips (training and inference alike) --------------------------------------------

def decode_side(size: int) -> int:
    """The longer side frames are decoded at before squashing to size x size (training and inference alike)."""
    return max(64, 2 * int(size))


def frames_to_clip(frames, size: int):
    """(T, h, w, 3) uint8 array (or a list of (h, w, 3) arrays / PIL images) -> (T, 3, size, size) uint8 tensor,
    squashed with an antialiased bilinear resize."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    array = np.stack([np.asarray(f, dtype=np.uint8) for f in frames]) if isinstance(frames, list) else frames
    x = torch.from_numpy(np.ascontiguousarray(array)).permute(0, 3, 1, 2).float()  # (T, 3, h, w)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x.round_().clamp_(0, 255).to(torch.uint8)


# ---- decoding in child processes ---------------------------------------------------------------

def decode_clips(paths: list[str], *, frames: int, side: int, timeout_s: float = CLIP_TIMEOUT_S,
                 workers: int | None = None) -> list[tuple]:
    """Per path, in order: (frames (T, h, w, 3) uint8 or None, duration in s or None, reason it failed or "")."""
    import tempfile
    from concurrent.futures import ThreadPoolExecutor

    workers = max(1, min(workers or min(4, os.cpu_count() or 1), len(paths)))
    jobs = [(i, str(p)) for i, p in enumerate(paths)]
    results: list[tuple] = [(None, None, "not decoded")] * len(paths)
    with tempfile.TemporaryDirectory(prefix="lab-clips-") as tmp:
        shares = [jobs[w::workers] for w in range(workers)]
        with ThreadPoolExecutor(workers) as pool:
            for outcome in pool.map(lambda share: _decode_share(share, frames, side, timeout_s, Path(tmp)), shares):
                for index, value in outcome.items():
                    results[index] = value
    return results


def _decode_share(jobs: list[tuple[int, str]], frames: int, side: int, timeout_s: float, tmp: Path) -> dict:
    """Decode `jobs` in as few child processes as possible: a fresh child after each one killed or crashed."""
    import queue
    import threading

    outcome: dict[int, tuple] = {}
    pending = list(jobs)
    while pending:
        done_before = len(outcome)
        spec = tmp / f"jobs-{pending[0][0]}.json"
        spec.write_text(json.dumps({"frames": frames, "side": side, "clips": pending}))
        with open(tmp / f"stderr-{pending[0][0]}.txt", "w+b") as err:
            child = subprocess.Popen(_child_command(spec, tmp), cwd=_REPO_ROOT, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=err)
            lines: queue.Queue = queue.Queue()
            threading.Thread(target=lambda: ([lines.put(line) for line in child.stdout], lines.put(None)),
                             daemon=True).start()
            current, started = None, False
            try:
                while True:
                    try:  # the child's start-up (importing torch and PyAV) gets its own allowance on top of the
                        # clip's limit: on a busy 2-core machine a fresh interpreter once took over 30 s to start
                        line = lines.get(timeout=timeout_s if started else timeout_s + STARTUP_S)
                    except queue.Empty:
                        if current is not None:
                            outcome[current] = (None, None, f"decoding took longer than {timeout_s:g} s")
                        break
                    if line is None:
                        break
                    word, _, rest = line.decode("utf-8", "replace").strip().partition(" ")
                    index, _, detail = rest.partition(" ")
                    if not index.isdigit():
                        continue  # not a line of ours
                    if word == "start":
                        current, started = int(index), True
                    elif word == "ok":
                        outcome[int(index)] = _read_clip(tmp / f"{index}.npy", frames, side, detail)
                        current = None
                    elif word == "bad":
                        outcome[int(index)] = (None, None, detail or "could not be decoded")
                        current = None
            finally:
                if child.poll() is None:
                    child.kill()  # past the time limit, or this process failed: never leave a decoder running
            code = child.wait()
            if current is not None and current not in outcome:
                reason = (f"the decoder crashed (signal {-code}); the file is probably damaged" if code < 0
                          else "the decoder stopped unexpectedly")
                outcome[current] = (None, None, reason)
            if not started:
                err.seek(0)
                tail = err.read().decode("utf-8", "replace").strip().splitlines()
                raise DataError("the video decoder process could not start"
                                + (f": {tail[-1][:300]}" if tail else f" (exit status {code})"))
        if len(outcome) == done_before:  # a child that settled nothing: give up on its first clip, not loop
            outcome[pending[0][0]] = (None, None, "the decoder stopped before reading it")
        pending = [job for job in pending if job[0] not in outcome]
    return outcome


def _child_command(spec: Path, out_dir: Path) -> list[str]:
    # `-m` from the repository root: the child imports core.data (cheap, no torch) and this module
    return [sys.executable, "-m", "core.data.video_folder", str(spec), str(out_dir)]


def _read_clip(path: Path, frames: int, side: int, duration: str) -> tuple:
    import numpy as np
    clip = np.load(path, allow_pickle=False)
    path.unlink(missing_ok=True)
    if clip.dtype != np.uint8 or clip.ndim != 4 or clip.shape[0] != frames or clip.shape[3] != 3 \
            or max(clip.shape[1:3]) > side:
        return None, None, "the decoder returned malformed frames"
    return clip, float(duration) if duration else None, ""


def _load_worker():
    """core/data/video_worker.py loaded from its file: the worker module itself imports nothing from core."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("lab_video_worker", _WORKER_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sample_evenly(worker, path: str, frames: int, side: int):
    """(T, h, w, 3) uint8: T frames evenly over the clip (the worker's sampler at every duration/T seconds)."""
    import av
    import numpy as np
    try:
        with av.open(path, mode="r") as container:
            if not container.streams.video:
                raise worker.DecodeError("the file has no video stream")
            stream = container.streams.video[0]
            duration = (float(stream.duration * stream.time_base) if stream.duration is not None and stream.time_base
                        else (container.duration / 1_000_000 if container.duration else None))
    except worker.DecodeError:
        raise
    except Exception as exc:
        raise worker.DecodeError(f"not a readable video ({worker._first_line(exc)})") from None
    if duration and duration > 0:
        picked, _ = worker.decode(path, duration / frames, frames, side)
    else:  # no duration in the container: decode the start of it and spread the T frames over that
        picked, _ = worker.decode(path, 1 / 60, _SCAN_FRAMES, side)
    if not picked:
        raise worker.DecodeError("it holds no video frames")
    index = np.linspace(0, len(picked) - 1, frames).round().astype(int)  # repeats frames of very short clips
    return np.stack([picked[i] for i in index]), duration


def _child_main(argv: list[str]) -> int:
    """In the child: decode every clip of the job file, reporting `start i`, `ok i duration` or `bad i reason`."""
    spec_path, out_dir = Path(argv[0]), Path(argv[1])
    spec = json.loads(spec_path.read_text())
    worker = _load_worker()
    worker._limit_memory()
    import numpy as np
    for index, path in spec["clips"]:
        print(f"start {index}", flush=True)
        try:
            clip, duration = _sample_evenly(worker, path, int(spec["frames"]), int(spec["side"]))
            np.save(out_dir / f"{index}.npy", clip, allow_pickle=False)
            print(f"ok {index} {duration if duration else ''}".rstrip(), flush=True)
        except MemoryError:
            print(f"bad {index} decoding needed more memory than allowed", flush=True)
        except Exception as exc:  # noqa: BLE001  corrupt packets, unsupported codecs...: skip the clip
            print(f"bad {index} {worker._first_line(exc)}".replace("\n", " "), flush=True)
    return 0


# ---- the folder --------------------------------------------------------------------------------

def preview_video_folder(cfg, *, per_class: int, seed: int):
    """(class names, the first `per_class` clips of each class, their labels): only these few are decoded
    (in the child process), so it stays quick. `seed` is unused: the first clips are always the same."""
    import torch

    from core.data.folder import find_splits, visible_dirs
    opts = resolve(cfg.options, OPTIONS)
    train_dir, _ = find_splits(open_source(cfg.path))
    picked = []
    for label, folder in enumerate(d for d in visible_dirs(train_dir) if walk_videos(d, first_only=True)):
        picked += [(path, label, folder.name) for path, _ in walk_videos(folder)[:per_class]]
    decoded = decode_clips([p for p, _, _ in picked], frames=opts["frames"], side=decode_side(opts["size"]))
    classes = list(dict.fromkeys(name for _, _, name in picked))
    good = [(frames_to_clip(clip, opts["size"]), label) for (clip, _, _), (_, label, _) in zip(decoded, picked)
            if clip is not None]
    if not good:
        raise ConfigError(f"data.path: none of the first videos in {shown_path(cfg.path)} could be decoded")
    return classes, torch.stack([c for c, _ in good]), torch.tensor([label for _, label in good])


@register_dataset("video-folder", description="Your own videos: a folder or .zip with train/<class>/*.mp4 "
                  "(and optionally val/<class>/)", classes=None, channels=3, image_size=DEFAULT_SIZE,
                  needs_path=True, kind="video", options=OPTIONS, preview=preview_video_folder)
def build_video_folder(cfg, *, seed: int):
    import torch

    from core.data.cache import cached_tensors
    from core.data.folder import visible_dirs, find_splits
    from core.data.splits import shuffle_pairs, split_train_val
    from core.data.clips import VideoSplits

    opts = resolve(cfg.options, OPTIONS)
    frames, size = int(opts["frames"]), int(opts["size"])
    root = open_source(cfg.path)
    train_dir, val_dir = find_splits(root)
    classes = [d.name for d in visible_dirs(train_dir) if walk_videos(d, first_only=True)]
    if not classes:
        raise DataError(f"no videos (mp4, webm, mov, avi, mkv) in class folders of {shown_path(cfg.path)}: put them in "
                        "train/<class>/ folders (and optionally val/<class>/), or in <class>/ folders")
    train_files, newest = _list_videos(train_dir, classes, "train")
    val_files, val_newest = _list_videos(val_dir, classes, val_dir.name) if val_dir else ([], 0)
    total = len(train_files) + len(val_files)
    if total * frames * 3 * size * size > _MAX_DECODED_BYTES:
        raise DataError(f"{total:,} clips of {frames} frames at {size}x{size} need "
                        f"{total * frames * 3 * size * size / 1e9:.1f} GB of memory; lower the frames or the size")
    key = f"video-folder:{train_dir}:{val_dir or ''}:{total}:{max(newest, val_newest)}:{frames}:{size}"

    def build():
        decoded = decode_clips([p for p, _ in train_files + val_files], frames=frames, side=decode_side(size))
        good = [i for i, (clip, _, _) in enumerate(decoded) if clip is not None]
        if not good:
            path, reason = (train_files + val_files)[0][0], decoded[0][2]
            raise DataError(f"none of the {total} videos in {shown_path(cfg.path)} could be decoded "
                            f"(first: {path.name}: {reason})")
        clips = [frames_to_clip(decoded[i][0], size) for i in good]
        labels = torch.tensor([(train_files + val_files)[i][1] for i in good], dtype=torch.int64)
        is_train = torch.tensor([i < len(train_files) for i in good])
        x = torch.stack(clips)  # (N, T, 3, S, S)
        durations = [decoded[i][1] for i in good if decoded[i][1]]
        return {"train_x": x[is_train], "train_y": labels[is_train], "val_x": x[~is_train], "val_y": labels[~is_train],
                "skipped": total - len(good), "durations": [float(d) for d in durations]}

    data = cached_tensors(key, build)
    if len(data["train_y"]) == 0:
        raise DataError(f"none of the {len(train_files)} training videos in {shown_path(cfg.path)} could be decoded")
    if val_dir is not None and len(data["val_y"]):
        train_x, train_y = shuffle_pairs(data["train_x"], data["train_y"], seed)
        val_x, val_y, how = data["val_x"], data["val_y"], f"{train_dir.name}/ and {val_dir.name}/"
    else:
        train_x, train_y, val_x, val_y = split_train_val(data["train_x"], data["train_y"], cfg.val_fraction, seed)
        how = f"{train_dir.name}/, {cfg.val_fraction:g} held out for validation"
    durations = sorted(data["durations"])
    interval = durations[len(durations) // 2] / frames if durations else None
    return VideoSplits(train_x, train_y, val_x, val_y, classes=classes, skipped=int(data["skipped"]),
                       source=f"video folder {shown_path(cfg.path)} ({how})", frame_interval_s=interval)


def _is_video(name: str) -> bool:
    return name.lower().endswith((".mp4", ".webm", ".mov", ".avi", ".mkv"))  # core.data.video_frames's list


def walk_videos(top: Path, first_only: bool = False) -> list[tuple[Path, int]]:
    """(path, mtime_ns) of video files under `top`, sorted (core.data.folder's walker with a video filter)."""
    from core.data.folder import walk_images
    return walk_images(top, first_only, keep=_is_video)


def _list_videos(split_dir: Path, classes: list[str], split: str) -> tuple[list[tuple[Path, int]], int]:
    from core.data.folder import visible_dirs
    index = {name: i for i, name in enumerate(classes)}
    unknown = [d.name for d in visible_dirs(split_dir) if d.name not in index and walk_videos(d, first_only=True)]
    if unknown:
        raise DataError(f"{split}/ has class folders that train/ lacks: {', '.join(unknown[:5])}")
    files, newest = [], 0
    for name in classes:
        for path, mtime in walk_videos(split_dir / name) if (split_dir / name).is_dir() else []:
            files.append((path, index[name]))
            newest = max(newest, mtime)
    return files, newest


def open_source(path_text: str | None) -> Path:
    if not path_text:
        raise DataError("data.path is empty: name a folder of videos or a .zip file")
    from core.data.roots import readable_path
    path = readable_path(path_text)
    if path.is_dir():
        return path.resolve()
    if path.is_file() and path.suffix.lower() == ".zip":
        return _extract_videos(path.resolve())
    raise DataError(f"data path {shown_path(path_text)} is neither a folder nor a .zip file" if path.exists()
                    else f"data path not found: {shown_path(path_text)}")


def _extract_videos(zip_path: Path) -> Path:
    """Unpack the zip's video files once, checked member by member first (core.data.folder's unpacker)."""
    from core.data.folder import extract_zip
    return extract_zip(zip_path, keep=_is_video, cache="video-folders", what="videos")


if __name__ == "__main__":  # the decoding child: python -m core.data.video_folder JOBS.json OUT_DIR
    sys.exit(_child_main(sys.argv[1:]))
