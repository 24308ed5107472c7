"""Clicking an off-diagonal cell of a finished run's confusion matrix in Chromium shows the images behind it.

Streamlit's chart selection returns nothing for a heatmap click; this shipped broken once because only the
handler was tested. Here a real click on a real cell must make the misclassified images appear."""

import shutil
import time

import pytest

from conftest import app_server

from core import jobs
from core.jobs.runner import execute_run
from core.presets import preset

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium browser found")


@pytest.fixture
def finished_run(tmp_path, monkeypatch):
    """A digits classifier after one epoch (about 90% right, so some cells off the diagonal hold images)
    and a server on its lab."""
    monkeypatch.setenv("LAB_HOME", str(tmp_path / "lab"))
    run_id = jobs.create(preset("digits-mlp").replace(**{"optim.epochs": 1}))
    assert execute_run(run_id, slot="cpu") == "completed"
    with app_server(tmp_path / "server.log") as (url, _pid):
        yield url, run_id


def test_clicking_an_off_diagonal_cell_shows_its_misclassified_images(finished_run, tmp_path):
    from core.tasks.classification.evaluation import evaluate_run
    url, run_id = finished_run
    report = evaluate_run(run_id, "best")
    n = len(report.classes)
    cells = [(int(report.confusion[t][p]), t, p) for t in range(n) for p in range(n) if t != p]
    count, true_index, pred_index = max(cells)  # the most common confusion
    assert count > 0
    true_name, pred_name = report.classes[true_index], report.classes[pred_index]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(f"{url}/train?run={run_id}")
        page.get_by_text("Click a cell to see the images behind it.").wait_for(timeout=120_000)
        chart = page.locator(".js-plotly-plot").filter(has_text="predicted").first
        chart.wait_for(timeout=60_000)
        cell = chart.locator(".scatterlayer path.point").nth(true_index * n + pred_index)
        cell.scroll_into_view_if_needed()
        time.sleep(1)
        box = cell.bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        heading = page.get_by_text(f"{count} image(s) of {true_name} classified as {pred_name}")
        heading.wait_for(timeout=60_000)
        images = page.locator("[data-testid='stImage'] img")
        images.first.wait_for(timeout=30_000)
        time.sleep(1)
        page.screenshot(path=tmp_path / "confusion-click.png", full_page=True)
        shown = images.count()
        browser.close()
    assert shown >= min(count, 24)
