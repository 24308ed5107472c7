"""Classify an uploaded clip with a video run: windows of T frames slid along it.

Frames are decoded by core.data.video_frames.sample_frames (a child process with a time limit and a
memory cap), one every `every_s` seconds, then squashed to the run's S x S exactly as its training
clips were (core.data.video_folder.frames_to_clip on frames decoded at the same size). Every window
of T consecutive sampled frames is classified; the clip's verdict is the mean of the windows'
probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.errors import InputError

DEFAULT_EVERY_S = 0.1  # generated clips have no clock: one sampled frame per 0.1 s (10 fps uploads)
MAX_WINDOWS = 2000


@dataclass
class ClipPrediction:
    times: list[float]  # (N,) seconds of each sampled frame
    clip: torch.Tensor  # (N, 3, S, S) uint8: the frames as the model saw them
    starts: list[int]  # first frame of each window (W,)
    frames_per_window: int  # T
    probabilities: torch.Tensor  # (W, K)
    classes: list[str]
    windows: "pd.DataFrame"  # noqa: F821  window, start_s, end_s, top1, p1, then one column per class
    summary: "pd.DataFrame"  # noqa: F821  class, mean_probability, windows_top1 (sorted)
    repeated: bool = False  # the clip had fewer than T frames: frames were repeated to fill one window

    @property
    def top_class(self) -> str:
        return str(self.summary.iloc[0]["class"])

    def window_frames(self, index: int) -> torch.Tensor:
        """(T, 3, S, S) uint8 frames of window `index`."""
        return self.clip[self._indices(index)]

    def _indices(self, index: int) -> list[int]:
        n, t = len(self.clip), self.frames_per_window
        if n < t:
            return np.linspace(0, n - 1, t).round().astype(int).tolist()
        start = self.starts[index]
        return list(range(start, start + t))


def default_every_s(metadata: dict) -> float:
    """Sample uploads at the spacing of the run's training frames (video folders), else DEFAULT_EVERY_S."""
    interval = (metadata.get("preprocessing") or {}).get("frame_interval_s")
    return float(interval) if interval else DEFAULT_EVERY_S


def decode_clip(data, *, name: str | None, size: int, every_s: float = DEFAULT_EVERY_S, max_frames: int = 300,
                timeout_s: float = 60):
    """[(time s, PIL image)] from uploaded bytes or a path, decoded in the child process; InputError if unusable."""
    from core.data.video_folder import decode_side
    from core.data.video_frames import sample_frames
    return sample_frames(data, name=name, every_s=every_s, max_frames=max_frames, size=decode_side(size),
                         timeout_s=timeout_s)


def window_starts(num_frames: int, frames: int, stride: int) -> list[int]:
    """First frame of every window of `frames` consecutive frames, `stride` apart; the last window always
    ends on the last frame so no frame is left out. [0] when the clip is shorter than one window."""
    if num_frames <= frames:
        return [0]
    starts = list(range(0, num_frames - frames + 1, max(1, int(stride))))
    if starts[-1] != num_frames - frames:
        starts.append(num_frames - frames)
    return starts


@torch.inference_mode()
def classify_clip(run_model, frames, *, stride: int = 1, batch_size: int = 64) -> ClipPrediction:
    """Per-window and clip-level predictions of a video run (core.tasks.checkpoints.load_run_model) for
    decoded frames."""
    import pandas as pd

    from core.data.video_folder import frames_to_clip
    if run_model.task != "video":
        raise InputError(f"run {run_model.run_id} is a '{run_model.task}' run, not a video classifier")
    if not frames:
        raise InputError("the video gave no frames to classify")
    pre, classes = run_model.metadata["preprocessing"], list(run_model.metadata["classes"])
    t, size = int(pre["frames"]), int(pre["image_size"])
    times = [float(s) for s, _ in frames]
    clip = frames_to_clip([np.asarray(image.convert("RGB")) for _, image in frames], size)  # (N, 3, S, S)
    starts = window_starts(len(clip), t, stride)
    if len(starts) > MAX_WINDOWS:
        raise InputError(f"{len(starts):,} windows is too many; use a larger stride or sample fewer frames "
                         f"(at most {MAX_WINDOWS:,} windows)")
    index = (torch.tensor(starts)[:, None] + torch.arange(t)[None, :]) if len(clip) >= t else \
        torch.from_numpy(np.linspace(0, len(clip) - 1, t).round().astype(np.int64))[None, :]  # (W, T)

    device = next(run_model.model.parameters()).device
    mean = torch.tensor(pre["mean"], dtype=torch.float32, device=device).view(1, 1, -1, 1, 1)
    std = torch.tensor(pre["std"], dtype=torch.float32, device=device).view(1, 1, -1, 1, 1)
    probs = []
    for chunk in index.split(batch_size):
        windows = clip[chunk].to(device)  # (B, T, 3, S, S) uint8
        x = (windows.float() / 255 - mean) / std
        probs.append(torch.softmax(run_model.model(x).float(), dim=1).cpu())
    probabilities = torch.cat(probs)  # (W, K)

    best_p, best_i = probabilities.max(dim=1)
    last = index[:, -1].tolist()
    table = pd.DataFrame({"window": range(len(starts)), "start_s": [times[i] for i in index[:, 0].tolist()],
                          "end_s": [times[i] for i in last], "top1": [classes[i] for i in best_i.tolist()],
                          "p1": best_p.numpy().astype(float)})
    for k, name in enumerate(classes):
        table[name if name not in table.columns else f"{name} (p)"] = probabilities[:, k].numpy().astype(float)
    mean_p = probabilities.mean(dim=0)
    wins = torch.bincount(best_i, minlength=len(classes))
    summary = pd.DataFrame({"class": classes, "mean_probability": mean_p.numpy().astype(float),
                            "windows_top1": wins.numpy().astype(int)})
    summary = summary.sort_values("mean_probability", ascending=False, kind="stable").reset_index(drop=True)
    return ClipPrediction(times=times, clip=clip, starts=starts, frames_per_window=t, probabilities=probabilities,
                          classes=classes, windows=table, summary=summary, repeated=len(clip) < t)


# ---- pictures of clips --------------------------------------------------------------------------

def clip_strip(clips: torch.Tensor, scale: int = 2):
    """A PIL image of clips (T, 3, S, S) or (N, T, 3, S, S) uint8: one row per clip, frames left to right,
    enlarged `scale` times with nearest-neighbour so single pixels of motion stay visible."""
    from PIL import Image
    from torchvision.utils import make_grid
    if clips.dim() == 4:
        clips = clips[None]
    n, t = clips.shape[:2]
    grid = make_grid(clips.flatten(0, 1), nrow=t, padding=2, pad_value=255)  # (3, H', W') uint8
    image = Image.fromarray(grid.permute(1, 2, 0).numpy())
    return image.resize((image.width * scale, image.height * scale), Image.NEAREST) if scale > 1 else image


def example_video(class_name: str, *, frames: int = 24, size: int = 32, fps: int = 10, seed: int = 0,
                  scale: int = 4) -> bytes:
    """An mp4 (H.264, or MPEG-4 part 2) of one generated moving-shapes clip of `class_name`: something to upload
    to a moving-shapes run when no clip of one's own is at hand. Encoded in this process: the pixels are ours."""
    import io

    import av

    from core.data.moving_shapes import CLASSES, generate_moving_shapes
    if class_name not in CLASSES:
        raise InputError(f"'{class_name}' is not one of the moving-shapes classes: {', '.join(CLASSES)}")
    x, y = generate_moving_shapes(len(CLASSES), frames, size, seed)  # one clip per class
    clip = x[int((y == CLASSES.index(class_name)).nonzero()[0])]  # (T, 3, S, S)
    pixels = clip.permute(0, 2, 3, 1).repeat_interleave(scale, 1).repeat_interleave(scale, 2).numpy()
    codec = next((c for c in ("libx264", "mpeg4") if c in av.codecs_available), None)
    if codec is None:
        raise InputError("this PyAV build has neither an H.264 nor an MPEG-4 encoder")
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = pixels.shape[2], pixels.shape[1], "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "12"}
        for frame in pixels:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()
