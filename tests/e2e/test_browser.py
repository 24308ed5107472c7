"""End to end in a real browser: headless Chromium, driven by Playwright, against `streamlit run app.py`.

Skips cleanly when Chromium or Playwright is missing (.ci/run installs Debian's chromium).
"""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import app_server

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium browser found")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def app_url(tmp_path):
    with app_server(tmp_path / "server.log", env={**os.environ, "LAB_HOME": str(tmp_path / "lab")}) as (url, _pid):
        yield url


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
        page.get_by_text("Grad-CAM", exact=True).first.click()  # the explanation method's radio option
        page.get_by_test_id("stImageCaption").filter(has_text="Grad-CAM").first.wait_for(timeout=60_000)
        time.sleep(1)  # let the charts finish their first draw
        page.screenshot(path=shots / "media.png", full_page=True)
        browser.close()
    assert sorted(p.name for p in shots.iterdir()) == ["home.png", "media.png", "runs.png", "train.png"]


def test_a_deep_link_as_a_fresh_servers_first_request_goes_through_the_router(tmp_path):
    """The first request a fresh server gets is a deep link to a comparison: it goes through the router
    (its sidebar with every page) to the Runs page comparing the linked runs, with no "Page not found".

    This pins why the page scripts live in app_pages/, not pages/: while a top-level pages/ folder exists
    (even one with no page in it), Streamlit 1.67 runs the first script of a fresh server through its old
    multipage path, which knows only app.py, and shows "Page not found" over the page the router then draws.
    """
    from core.config import RunConfig
    from core.store import RunStore

    store = RunStore(tmp_path / "lab" / "lab.db")
    ids = []
    for name, lr in (("slow lr", 0.001), ("fast lr", 0.01)):
        run_id = store.create_run(RunConfig().replace(**{"optim.lr": lr}).to_dict(), name=name)
        store.set_status(run_id, "running")
        store.log_metrics([(run_id, step, 0, "val_acc", 0.5 + lr * step, 0.0) for step in range(1, 6)])
        store.finish(run_id, "completed")
        ids.append(run_id)
    store.close()
    port = _free_port()
    env = {**os.environ, "LAB_HOME": str(tmp_path / "lab")}
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                               "--server.headless", "true", "--browser.gatherUsageStats", "false"],
                              cwd=ROOT, env=env, stdout=open(tmp_path / "server.log", "wb"), stderr=subprocess.STDOUT)
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            deadline = time.time() + 60
            while True:  # the browser's first request is the deep link itself: no health check before it
                try:
                    page.goto(f"http://127.0.0.1:{port}/runs?compare={','.join(ids)}")
                    break
                except sync_api.Error:
                    if time.time() > deadline:
                        raise
                    time.sleep(0.3)
            page.get_by_role("heading", name="Runs").wait_for(timeout=60_000)
            nav = page.locator("[data-testid='stSidebarNav']")
            for title in ("Home", "Train", "Runs", "Media", "Concepts"):
                nav.get_by_role("link", name=title).wait_for(timeout=30_000)
            page.get_by_text("Job queue").first.wait_for(timeout=30_000)  # the router's own sidebar
            page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)  # the comparison of the two runs
            page.locator(".legendtext", has_text="fast lr").first.wait_for(timeout=30_000)  # both runs plotted
            page.locator(".legendtext", has_text="slow lr").first.wait_for(timeout=30_000)
            # Streamlit's old multipage path (taken while a top-level pages/ folder exists) answers a first
            # deep link with a "Page not found" dialog over the right page: none may show
            assert page.get_by_text("Page not found").count() == 0
            page.screenshot(path=tmp_path / "deep-link.png", full_page=True)
            shutil.copy(tmp_path / "deep-link.png", "/tmp/deep-link.png") if os.environ.get("KEEP_SHOTS") else None
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert (tmp_path / "deep-link.png").stat().st_size > 0
