"""Untrusted media (core.data.media, core.data.video_frames): uploads open with limits and specific messages;
videos are sampled in a child process with a time limit, and broken ones get clear errors."""

from __future__ import annotations

import io
import os
import struct
import sys
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from conftest import encode_image, noise_image
from core.errors import InputError


# ---- images ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt,options", [("PNG", {}), ("JPEG", {"quality": 95}), ("WEBP", {"lossless": True}),
                                         ("GIF", {}), ("BMP", {}), ("TIFF", {})])
def test_common_formats_open_as_rgb(fmt, options):
    from core.data.media import open_image
    img = open_image(encode_image(noise_image(), fmt, **options), f"photo.{fmt.lower()}")
    assert img.mode == "RGB" and img.size == (48, 40)


def test_transparent_and_animated_images():
    from core.data.media import open_image
    clear = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    assert open_image(encode_image(clear, "PNG"), "clear.png").getpixel((0, 0)) == (255, 255, 255)
    frames = [Image.new("RGB", (10, 10), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100)
    first = open_image(buffer.getvalue(), "anim.gif")
    assert first.getpixel((5, 5)) == (255, 0, 0)


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG header (valid CRCs) declaring a huge size, with no pixel data behind it."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_bad_uploads_get_specific_messages(monkeypatch):
    from core.data.media import open_image
    cases = [
        (b"", "photo.png", "photo.png is empty"),
        (b"just some text, not pixels", "notes.png", "notes.png is not an image in a supported format (JPEG, PNG"),
        (encode_image(noise_image((64, 64)), "PNG")[:2000], "cut.png", "cut.png is truncated or corrupt"),
        (_png_claiming(100_000, 100_000), "bomb.png", "bomb.png has too many pixels (10,000,000,000 pixels)"),
        (encode_image(Image.new("RGB", (16, 16)), "ICO"), "icon.ico",
         "icon.ico: ICO images are not supported; upload one of: JPEG"),
        (encode_image(Image.new("RGB", (16, 16)), "ICO"), "favicon.png", "favicon.png: ICO images are not supported"),
        (encode_image(Image.new("RGB", (16, 16)), "TGA"), "pic.tga", "pic.tga: TGA images are not supported"),
    ]
    for data, name, message in cases:
        with pytest.raises(InputError) as err:
            open_image(data, name)
        assert message in str(err.value), (name, str(err.value))
    with pytest.raises(InputError, match=r"big.png is 0.0 MB; images may be at most"):
        open_image(encode_image(noise_image(), "PNG"), "big.png", max_bytes=100)

    # Both sides of Pillow's guard: over the limit (a warning in Pillow) and over twice it (an error).
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    for side, warnings_as in ((40, "ignore"), (40, "error"), (100, "default")):  # 1,600 and 10,000 pixels
        with warnings.catch_warnings(), pytest.raises(InputError) as err:
            warnings.simplefilter(warnings_as, Image.DecompressionBombWarning)
            open_image(encode_image(Image.new("RGB", (side, side)), "PNG"), "large.png")
        assert f"large.png has too many pixels ({side * side:,} pixels)" in str(err.value)
        assert "the limit is 1,000 pixels" in str(err.value)
    assert open_image(encode_image(Image.new("RGB", (30, 30)), "PNG"), "ok.png").size == (30, 30)


# ---- video -------------------------------------------------------------------------------------------



def _dominant(image: Image.Image) -> int:
    return int(np.asarray(image, dtype=np.float32).reshape(-1, 3).mean(axis=0).argmax())


def test_sample_frames_keeps_one_frame_per_second(clip):
    from core.data.video_frames import sample_frames
    frames = sample_frames(clip.read_bytes(), name="clip.mp4", every_s=1.0, size=32)
    assert [round(t, 2) for t, _ in frames] == [0.0, 1.0, 2.0]
    assert [_dominant(img) for _, img in frames] == [0, 1, 2]  # red, green, blue
    assert all(img.mode == "RGB" and img.size == (32, 24) for _, img in frames)
    assert len(sample_frames(clip, every_s=0.1, max_frames=7)) == 7  # a path works too


def test_sparse_sampling_seeks_to_each_time(clip, monkeypatch):
    from core.data import video_worker
    monkeypatch.setattr(video_worker, "SEEK_GAP_S", 0.5)
    frames, times = video_worker.decode(str(clip), every_s=1.0, max_frames=10, size=64)
    assert [round(t, 2) for t in times] == [0.0, 1.0, 2.0]
    assert [int(f.reshape(-1, 3).mean(axis=0).argmax()) for f in frames] == [0, 1, 2]


def test_bad_videos_get_clear_errors(monkeypatch):
    from core.data.video_frames import sample_frames
    from core.data import video_frames as video
    with pytest.raises(InputError, match="could not decode clip.mp4: not a readable video"):
        sample_frames(os.urandom(4096), name="clip.mp4", timeout_s=30)
    with pytest.raises(InputError, match="clip.mp4 is empty"):
        sample_frames(b"", name="clip.mp4")
    with pytest.raises(InputError, match="'.gif' videos are not supported"):
        sample_frames(b"GIF89a", name="anim.gif")

    monkeypatch.setattr(video, "_worker_command", lambda *a: [sys.executable, "-c", "import time; time.sleep(30)"])
    with pytest.raises(InputError, match=r"decoding slow.mp4 took longer than 0.5 s, the time limit"):
        sample_frames(b"\x00" * 10, name="slow.mp4", timeout_s=0.5)
    monkeypatch.setattr(video, "_worker_command", lambda *a: [sys.executable, "-c", "import os; os.abort()"])
    with pytest.raises(InputError, match=r"could not decode crash.mp4: the decoder crashed \(signal 6\)"):
        sample_frames(b"\x00" * 10, name="crash.mp4")
    monkeypatch.setattr(video, "_worker_command", lambda *a: [sys.executable, "-c", "pass"])
    with pytest.raises(InputError, match="wrote no frames"):
        sample_frames(b"\x00" * 10, name="quiet.mp4")


def test_audio_only_file_has_no_video_stream(tmp_path):
    import av
    from core.data.video_frames import sample_frames
    if "aac" not in av.codecs_available:
        pytest.skip("no AAC encoder in this PyAV build")
    path = tmp_path / "sound.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=8000)
        samples = np.zeros((1, 8000), dtype=np.float32)
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = 8000
        for packet in list(stream.encode(frame)) + list(stream.encode()):
            container.mux(packet)
    with pytest.raises(InputError, match="could not decode sound.mp4: the file has no video stream"):
        sample_frames(path)
