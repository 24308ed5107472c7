"""The Runs page's TensorBoard download, clicked in Chromium: the zip that arrives holds each selected run's event
files, and TensorBoard's own reader finds the run's metrics in them."""

import io
import shutil
import zipfile

import pytest

from conftest import app_server

from core import jobs
from core.jobs.runner import execute_run
from core.presets import preset

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytest.importorskip("tensorboard")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium browser found")


@pytest.fixture
def two_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_HOME", str(tmp_path / "lab"))
    ids = []
    for lr in (1e-3, 3e-3):
        run_id = jobs.create(preset("digits-mlp").replace(**{"optim.epochs": 1, "optim.lr": lr}))
        assert execute_run(run_id, slot="cpu") == "completed"
        ids.append(run_id)
    with app_server(tmp_path / "server.log") as (url, _pid):
        yield url, ids


def test_the_downloaded_zip_opens_in_tensorboards_reader(two_runs, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    url, ids = two_runs
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1400, "height": 1100}, accept_downloads=True)
        page.goto(f"{url}/runs?compare={','.join(ids)}")
        tab = page.get_by_role("tab", name="Export")
        tab.wait_for(timeout=120_000)
        tab.click()
        button = page.get_by_role("button", name="TensorBoard event files (zip)")
        button.wait_for(timeout=60_000)
        with page.expect_download(timeout=120_000) as caught:
            button.click()
        data = caught.value.path().read_bytes()
        browser.close()
    folder = tmp_path / "tb"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(folder)
    found = sorted(path.name for path in folder.iterdir())
    assert [name[-len(ids[0]):] for name in found] == sorted(ids)
    for path in folder.iterdir():
        read = EventAccumulator(str(path), size_guidance={"scalars": 0})
        read.Reload()
        assert {"val_acc", "train_loss"} <= set(read.Tags()["scalars"])
