"""Shared fixtures: every test gets its own LAB_HOME, so runs, caches and slots never leak between tests."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# the shared real data; LAB_SHARED_DATA names another copy (the GPU machine's, carried by bench/gpu_all.sh)
SHARED_DATA = Path(os.environ.get("LAB_SHARED_DATA") or ROOT.parent / "shared" / "data")

# Data paths are read only under allowed roots (core.data.roots): tests make their folders in the temp
# directory and read the shared data, and the workers and servers they start inherit this.
os.environ["LAB_DATA_ROOTS"] = os.pathsep.join([tempfile.gettempdir(), str(SHARED_DATA)])
# AppTest runs the app in this process: its background import of torch (ui/warmup.py) would race the tests' own
# imports of torch in another thread, which torch does not survive. Real servers (app_server) keep it.
os.environ["LAB_BACKGROUND_IMPORTS"] = "0"


def pytest_configure(config):
    config.addinivalue_line("markers", "cuda: the GPU suite (tests/cuda); skipped without a CUDA GPU, run on the CPU "
                                       "as a smoke test with LAB_CUDA_SUITE_DEVICE=cpu")


def pytest_collection_modifyitems(config, items):
    """Skip the `cuda` tests where there is no GPU (torch is imported only when some were collected)."""
    marked = [item for item in items if item.get_closest_marker("cuda")]
    if not marked:
        return
    device = os.environ.get("LAB_CUDA_SUITE_DEVICE") or "cuda"
    if not device.startswith("cuda"):
        return  # the smoke mode: the suite's code on the CPU (tests/cuda/suite.py)
    import torch
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False here); "
                                   "LAB_CUDA_SUITE_DEVICE=cpu runs this suite on the CPU as a smoke test")
    for item in marked:
        item.add_marker(skip)


@pytest.fixture
def lab_home(tmp_path, monkeypatch):
    home = tmp_path / "lab"
    monkeypatch.setenv("LAB_HOME", str(home))
    monkeypatch.setenv("LAB_HEARTBEAT_S", "0.2")
    monkeypatch.setenv("LAB_HEARTBEAT_STALE_S", "1")
    return home


@pytest.fixture
def no_workers(monkeypatch):
    """Submitted runs stay queued, no worker process started; yields the ids that would have had one (a test
    runs the ones it needs in its own process)."""
    import core.jobs
    spawned: list[str] = []
    monkeypatch.setattr(core.jobs, "spawn_worker", lambda run_id, **_: spawned.append(run_id) or 0)
    return spawned


def train_in_process(config) -> str:
    """Record `config` and train it to completion in this process (core.jobs.runner.execute_run); the run's id.
    execute_run takes over Ctrl-C and SIGTERM while it trains; pytest gets its own handlers back afterwards."""
    import signal

    from core import jobs
    from core.jobs.runner import execute_run
    run_id = jobs.create(config)
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        assert execute_run(run_id) == "completed"
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    return run_id


def wait_for(predicate, timeout=90, what="condition"):
    """Poll `predicate` until it returns something truthy (returned), or fail after `timeout` seconds."""
    import time
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def shared_file(*parts: str) -> Path:
    """A file from ../shared/data, or skip the test when it is absent (e.g. on a user's machine)."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not available")
    return path


def make_video(path, colours, seconds: int = 3, fps: int = 10, size=(64, 48)) -> None:
    """A real clip: each second a different solid colour."""
    import av
    import numpy as np
    codecs = [c for c in ("libx264", "mpeg4") if c in av.codecs_available]
    if not codecs:
        pytest.skip("this PyAV build has neither an H.264 nor an MPEG-4 encoder")
    codec = codecs[0]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for index in range(seconds * fps):
            pixels = np.zeros((size[1], size[0], 3), dtype=np.uint8)
            pixels[:] = colours[(index // fps) % len(colours)]
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.fixture(autouse=True)
def _restore_main_module():
    """AppTest runs page scripts as `__main__` and can leave its temporary script there; a later
    test that starts processes with multiprocessing's "spawn" would then re-run that script in every
    child. Put the real __main__ back after each test."""
    import sys
    main = sys.modules.get("__main__")
    yield
    if main is not None:
        sys.modules["__main__"] = main


@pytest.fixture()
def one_torch_thread():
    """Tiny models gain nothing from intra-op threads, and on a busy 2-core box two spinning threads
    make them 10x slower. Families with small models use this for their whole test module."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def encode_image(img, fmt: str, **options) -> bytes:
    """The PIL image saved in `fmt` (PNG, JPEG, ...), as bytes."""
    import io
    buffer = io.BytesIO()
    img.save(buffer, fmt, **options)
    return buffer.getvalue()


def noise_image(size=(48, 40), mode="RGB", seed=0):
    """A random-noise PIL image: RGB, RGBA or grey."""
    from PIL import Image
    import numpy as np
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4}.get(mode)
    shape = (size[1], size[0], channels) if channels else (size[1], size[0])
    return Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8))


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """A zip archive in memory holding `members` (name -> content)."""
    import io
    import zipfile
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]  # one per second of `clip`


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A real 4-second mp4, one solid colour per second (COLOURS)."""
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    make_video(path, COLOURS)
    return path


def open_page(page: str = "app_pages/home.py", **query):
    """The app (its router and sidebar) driven by AppTest, on `page`, with `query` as the URL's parameters;
    fails on any exception the page raised."""
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    if page != "app_pages/home.py":
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A real app server on a fresh LAB_HOME (this test's); yields its URL."""
    monkeypatch.setenv("LAB_HOME", str(tmp_path / "lab"))
    with app_server(tmp_path / "server.log") as (url, _pid):
        yield url


@contextmanager
def app_server(log_path: Path, env: dict | None = None):
    """A real `streamlit run app.py` on a free port (this process's environment, LAB_HOME included, unless
    `env` is given); yields its URL and pid once it answers its health check."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                               "--server.headless", "true", "--browser.gatherUsageStats", "false"],
                              cwd=ROOT, env=env or {**os.environ, "LAB_BACKGROUND_IMPORTS": "1"},
                              stdout=open(log_path, "wb"),
                              stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                if time.time() > deadline:
                    pytest.fail("streamlit did not start:\n" + Path(log_path).read_text()[-2000:])
                time.sleep(0.3)
        yield url, server.pid
    finally:
        server.terminate()
        server.wait(timeout=20)
