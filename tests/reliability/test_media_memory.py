"""A small zip of huge plain PNGs must not pin the server's memory (measured on a real server's RSS).

Reproduces: a 1.6 MB zip of eight plain 64-megapixel PNGs took the server from 0.9 GB to a 3.2 GB peak
and 2.8 GB stayed held after the tab closed. Target: it raises the RSS by under 300 MB and the RSS is back
within 100 MB of the baseline 10 s later. The same holds for eight 30-megapixel PNGs, which are under the
per-image limit and are decoded (and shrunk as they are)."""

import io
import shutil
import threading
import time
import zipfile
from pathlib import Path

import pytest

from conftest import app_server
from PIL import Image

from core import jobs
from core.jobs.runner import execute_run
from core.presets import preset

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium browser found")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Watch(threading.Thread):
    """Samples a process's RSS every 50 ms; `peak` is the highest seen."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.done = pid, 0.0, threading.Event()

    def run(self):
        while not self.done.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            time.sleep(0.05)


def plain_png_zip(path: Path, side: int, count: int = 8) -> Path:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (200, 120, 40)).save(buffer, "PNG", optimize=False, compress_level=9)
    with zipfile.ZipFile(path, "w") as archive:
        for i in range(count):
            archive.writestr(f"huge-{i}.png", buffer.getvalue())
    return path


@pytest.fixture
def media_server(tmp_path, monkeypatch):
    """A real server on a lab with one trained classifier, so Media opens with a model."""
    monkeypatch.setenv("LAB_HOME", str(tmp_path / "lab"))
    run_id = jobs.create(preset("digits-mlp").replace(**{"optim.epochs": 1}))
    assert execute_run(run_id, slot="cpu") == "completed"
    with app_server(tmp_path / "server.log") as server:
        yield server


@pytest.mark.parametrize("side, expected", [(8000, "megapixels"), (5500, "The first 6 in detail")])
def test_a_zip_of_huge_plain_pngs_does_not_pin_server_memory(media_server, tmp_path, side, expected):
    url, pid = media_server
    zipped = plain_png_zip(tmp_path / "huge.zip", side)
    assert zipped.stat().st_size < 2.5 * 1024**2
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url + "/media")
        page.get_by_text("Upload one or more pictures").wait_for(timeout=90_000)  # the model is loaded
        time.sleep(3)
        baseline = rss_mb(pid)
        watch = Watch(pid)
        watch.start()
        page.locator("[data-testid='stFileUploaderDropzoneInput']").first.set_input_files(str(zipped))
        page.get_by_text(expected).first.wait_for(timeout=120_000)
        time.sleep(1)
        page.screenshot(path=tmp_path / "media-huge.png", full_page=True)
        page.close()  # the tab closes
        time.sleep(10)
        watch.done.set()
        after = rss_mb(pid)
        browser.close()
    rise, held = watch.peak - baseline, after - baseline
    print(f"{side}x{side}: baseline {baseline:.0f} MB, peak +{rise:.0f} MB, 10 s later +{held:.0f} MB")
    assert rise < 300, f"the upload raised the server's RSS by {rise:.0f} MB"
    assert held < 100, f"{held:.0f} MB were still held 10 s after the request"
