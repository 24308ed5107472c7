"""A text classifier in Chromium: clicking an off-diagonal cell of its confusion matrix shows the validation texts
behind it, and on the Media page a typed text gets its top classes and its tokens highlighted by integrated
gradients."""

import shutil
import time

import pytest

from conftest import app_server

from core import jobs
from core.config import RunConfig
from core.jobs.runner import execute_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium browser found")


@pytest.fixture
def text_run(tmp_path, monkeypatch):
    """A bag-of-embeddings docstring classifier after a few quick epochs (some texts still confused)."""
    monkeypatch.setenv("LAB_HOME", str(tmp_path / "lab"))
    config = RunConfig.from_dict({
        "name": "docstrings-e2e", "task": "text_classification",
        "data": {"name": "docstrings", "options": {"max_per_class": 40}},
        "model": {"name": "text_bag", "options": {"embed": 32}},
        "task_options": {"tokens": "subword", "vocab_size": 500, "max_len": 96},
        "optim": {"optimizer": "adamw", "lr": 1e-2, "batch_size": 32, "epochs": 4}})
    run_id = jobs.create(config)
    assert execute_run(run_id, slot="cpu") == "completed"
    with app_server(tmp_path / "server.log") as (url, _pid):
        yield url, run_id


def test_confusion_click_shows_texts_and_media_highlights_tokens(text_run, tmp_path):
    from core.tasks.text_classification.evaluation import evaluate_run
    url, run_id = text_run
    report = evaluate_run(run_id, "best")
    n = len(report.classes)
    count, true_index, pred_index = max((int(report.confusion[t][p]), t, p)
                                        for t in range(n) for p in range(n) if t != p)
    assert count > 0
    true_name, pred_name = report.classes[true_index], report.classes[pred_index]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(f"{url}/train?run={run_id}")
        page.get_by_text("Click a cell to see the texts behind it.").wait_for(timeout=120_000)
        chart = page.locator(".js-plotly-plot").filter(has_text="predicted").first
        chart.wait_for(timeout=60_000)
        cell = chart.locator(".scatterlayer path.point").nth(true_index * n + pred_index)
        cell.scroll_into_view_if_needed()
        time.sleep(1)
        box = cell.bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.get_by_text(f"{count} text(s) of {true_name} classified as {pred_name}").wait_for(timeout=60_000)
        codes = page.locator("[data-testid='stCode']")
        codes.nth(min(count, 10) - 1).wait_for(timeout=30_000)
        time.sleep(1)
        shown_texts = [codes.nth(i).inner_text() for i in range(codes.count())]
        page.screenshot(path=tmp_path / "text-confusion-click.png", full_page=True)

        page.goto(f"{url}/media?run={run_id}")
        box = page.get_by_role("textbox", name="Text to classify")
        box.wait_for(timeout=120_000)
        box.fill("Log a message with severity ERROR on the root logger and its handlers.")
        box.press("Control+Enter")
        page.get_by_text("Which tokens decided it").wait_for(timeout=60_000)
        token = page.locator("span[title]").filter(has_text="logger").first
        token.wait_for(timeout=60_000)
        score = float(token.get_attribute("title"))
        time.sleep(1)
        page.screenshot(path=tmp_path / "text-media.png", full_page=True)
        bars = page.locator(".js-plotly-plot").filter(has_text="%").count()
        browser.close()
    assert len(shown_texts) >= min(count, 10) and all(text.strip() for text in shown_texts)
    assert score != 0.0 and bars >= 1
