"""End to end in a real browser: headless Chromium, driven by Playwright, against `streamlit run app.py`.

Skips cleanly when Chromium or Playwright is missing (.ci/run installs Debian's chromium).
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium browser found")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def app_url(tmp_path):
    port = _free_port()
    env = {**os.environ, "LAB_HOME": str(tmp_path / "lab")}
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                               "--server.headless", "true", "--browser.gatherUsageStats", "false"],
                              cwd=ROOT, env=env, stdout=open(tmp_path / "server.log", "wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            time.sleep(0.3)
    else:
        server.kill()
        pytest.fail("streamlit did not start:\n" + (tmp_path / "server.log").read_text()[-2000:])
    yield url
    server.terminate()
    server.wait(timeout=20)


def _digit_png(path: Path) -> Path:
    from PIL import Image
    from sklearn.datasets import load_digits
    digits = load_digits()
    Image.fromarray((digits.images[3] * 255 / 16).astype("uint8"), mode="L").resize((96, 96)).save(path)
    return path


def test_train_first_model_then_classify_an_upload(app_url, tmp_path):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(app_url)
        page.get_by_role("heading", name="Deep Learning Lab").wait_for(timeout=60_000)
        page.screenshot(path=shots / "home.png", full_page=True)

        page.get_by_role("button", name="Train your first model").click()
        page.wait_for_url("**/train?run=*", timeout=60_000)
        try:
            page.get_by_text("Validation results").wait_for(timeout=240_000)  # shown once the run completed
        except Exception:
            page.screenshot(path=shots / "train-timeout.png", full_page=True)
            raise
        page.get_by_text("accuracy (best checkpoint)").wait_for(timeout=120_000)
        page.locator(".js-plotly-plot").nth(1).wait_for(timeout=60_000)  # live charts and confusion matrix
        time.sleep(1)
        page.screenshot(path=shots / "train.png", full_page=True)

        page.get_by_role("link", name="Runs").first.click()
        page.get_by_role("heading", name="Runs").wait_for(timeout=60_000)
        page.get_by_text("1 of 1 runs").wait_for(timeout=60_000)
        page.get_by_placeholder("name, id, model, data set, tag").wait_for(timeout=60_000)  # filters drawn
        page.screenshot(path=shots / "runs.png", full_page=True)

        page.get_by_role("link", name="Media").first.click()
        page.get_by_role("heading", name="Media").wait_for(timeout=60_000)
        page.locator("[data-testid='stFileUploaderDropzoneInput']").first.set_input_files(
            str(_digit_png(tmp_path / "digit.png")))
        page.get_by_text("digit.png").first.wait_for(timeout=60_000)
        prediction = page.locator("[data-testid='stMarkdownContainer'] strong").filter(has_text="3").first
        prediction.wait_for(timeout=60_000)
        page.locator("[data-testid='stImage'] img").first.wait_for(timeout=60_000)
        page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
        page.get_by_text("Show Grad-CAM").click()
        page.get_by_text("Grad-CAM", exact=True).first.wait_for(timeout=60_000)
        time.sleep(1)  # let the charts finish their first draw
        page.screenshot(path=shots / "media.png", full_page=True)
        browser.close()
    assert sorted(p.name for p in shots.iterdir()) == ["home.png", "media.png", "runs.png", "train.png"]
