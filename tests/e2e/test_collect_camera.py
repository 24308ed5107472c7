"""The Collect page in a real Chromium with a fake webcam: a camera shot adds one photo, uploads fill the other
class, the Train button launches a run, and once it finished a test shot is classified with a chart.

Chromium's fake capture device (a green test pattern) stands in for the webcam; permission is granted on the
browser context, so no prompt appears."""

from __future__ import annotations

import re
import shutil
import time

import pytest
from conftest import encode_image

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium browser found")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream"]


def squares(folder, colour, n: int) -> list[str]:
    """`n` JPEG files of a coloured square on grey, each a little different."""
    import numpy as np
    from PIL import Image
    folder.mkdir()
    paths = []
    for i in range(n):
        rng = np.random.default_rng(i)
        pixels = rng.integers(90, 160, (80, 80, 3), dtype=np.uint8)
        x, y = rng.integers(0, 40, 2)
        pixels[y:y + 36, x:x + 36] = colour
        path = folder / f"{i}.jpg"
        path.write_bytes(encode_image(Image.fromarray(pixels), "JPEG"))
        paths.append(str(path))
    return paths


def wait_count(card, n: int, timeout_ms: int = 60_000) -> None:
    """Until the card's badge reads "n photo(s)" (the badge's icon name runs into the number in textContent)."""
    word = "photo(?!s)" if n == 1 else "photos"
    card.filter(has_text=re.compile(rf"(^|\D){n} {word}")).wait_for(timeout=timeout_ms)


def test_camera_shots_uploads_train_and_a_live_test(server, tmp_path):
    from core.data import collection as c
    from core.store import RunStore

    red = squares(tmp_path / "red", (220, 30, 30), 8)
    blue = squares(tmp_path / "blue", (30, 40, 220), 8)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1800}, permissions=["camera"])
        page = context.new_page()
        page.goto(f"{server}/collect")
        page.get_by_label("Name of the new collection").fill("Colours")
        page.get_by_role("button", name="Create collection").click()
        new_class = page.get_by_role("textbox", name="New class")
        for name in ("red", "blue"):
            new_class.fill(name)
            page.get_by_role("button", name="Add class").click()
            page.get_by_role("heading", name=name).wait_for(timeout=30_000)
        collection = c.open_collection("Colours")

        red_card, blue_card = page.locator(".st-key-collect_card_0"), page.locator(".st-key-collect_card_1")
        wait_count(red_card, 0)
        red_card.get_by_text("Webcam", exact=True).click()
        shutter = red_card.get_by_role("button", name="Take Photo")
        shutter.wait_for(timeout=30_000)
        # a click before the fake stream shows a frame takes no photo (on a loaded machine that took over a second)
        video = red_card.locator("video")
        video.wait_for(timeout=30_000)
        page.wait_for_function("v => v.readyState >= 2 && v.videoWidth > 0", arg=video.element_handle(),
                               timeout=30_000)
        time.sleep(0.5)
        shutter.click()
        wait_count(red_card, 1)
        assert c.counts(collection)["red"] == 1
        page.screenshot(path=tmp_path / "collect-shot.png")
        time.sleep(1)  # the page has settled: nothing is stored twice
        assert c.counts(collection)["red"] == 1

        blue_card.get_by_text("Upload photos", exact=True).click()
        blue_card.locator("input[type=file]").set_input_files(blue)
        wait_count(blue_card, 8)
        red_card.get_by_text("Upload photos", exact=True).click()
        red_card.locator("input[type=file]").set_input_files(red[:7])
        wait_count(red_card, 8)
        assert c.counts(collection) == {"red": 8, "blue": 8}

        page.get_by_role("button", name="Train the model").click()
        page.get_by_text("Latest run, started").wait_for(timeout=30_000)
        runs = c.remembered_runs(collection)
        assert len(runs) == 1
        run_id = runs[0]["id"]
        assert RunStore().get_run(run_id).config["data"]["path"] == str(collection.path)

        test = page.locator(".st-key-collect_test")
        test_shutter = test.get_by_role("button", name="Take Photo")
        test_shutter.wait_for(timeout=180_000)  # the run completed and the page drew "Test it"
        assert RunStore().get_run(run_id).status == "completed"
        time.sleep(1)
        test_shutter.click()
        chart = test.locator(".js-plotly-plot")
        try:
            chart.wait_for(timeout=45_000)
        except sync_api.TimeoutError:  # on a loaded machine a click during the page's rerun can be lost: once more
            test_shutter.click()
            chart.wait_for(timeout=120_000)
        answer = test.get_by_role("heading", name=re.compile(r"(red|blue) · \d+%"))
        answer.wait_for(timeout=10_000)
        page.screenshot(path=tmp_path / "collect-test.png")
        browser.close()
