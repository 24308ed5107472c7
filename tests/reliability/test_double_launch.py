"""A double-clicked Launch in a real browser makes one run. The two clicks of a double click reach the
server as two reruns with the button pressed; before launches carried a request key, each made a run."""

import shutil
import time

import pytest

from core.store import RunStore

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium browser found")


def test_a_double_clicked_launch_makes_one_run(server, tmp_path):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(server + "/train?preset=digits-mlp")
        launch = page.get_by_role("button", name="Launch")
        launch.wait_for(timeout=90_000)
        page.get_by_text("parameters").first.wait_for(timeout=90_000)  # the form has settled
        launch.scroll_into_view_if_needed()
        box = launch.bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.click(x, y)
        time.sleep(0.1)  # a double click's second press, while the first rerun is still submitting
        page.mouse.click(x, y)
        page.get_by_role("button", name="Clone into form").wait_for(timeout=60_000)  # watching the run
        time.sleep(4)  # both reruns have been handled
        page.screenshot(path=tmp_path / "double-launch.png", full_page=True)
        browser.close()
    runs = RunStore().get_runs()
    assert len(runs) == 1, f"{len(runs)} runs from one double click"
