"""App speed: first paint, page switches, and the Runs comparison with 100 runs x 5,000 steps.

    python bench/app_speed.py

Starts `streamlit run app.py` headless on a free port against a fresh LAB_HOME filled with 100
synthetic runs of 5,000 logged steps each, drives it with headless Chromium (Playwright), and prints:
  first paint            seconds from opening the app until the Home page's title and runs are shown
  switch to <page>       seconds from clicking a page in the sidebar until its title is shown
  runs comparison        server seconds to render the Runs page comparing all 100 runs (AppTest)
Targets: first paint < 2 s, page switches < 0.5 s, comparison < 1 s.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RUNS, STEPS = 100, 5000


def fill_store() -> list[str]:
    from core.config import preset
    from core.store import RunStore
    store = RunStore()
    rng = np.random.default_rng(0)
    ids = []
    for index in range(RUNS):
        config = preset("digits-cnn").replace(**{"optim.lr": float(10 ** rng.uniform(-4, -2)),
                                                 "optim.batch_size": int(rng.choice([32, 64, 128]))})
        run_id = store.create_run(config.to_dict(), name=f"sweep-{index:03d}")
        steps = np.arange(1, STEPS + 1)
        loss = 2.3 * np.exp(-steps / rng.uniform(500, 2000)) + rng.normal(0, 0.05, STEPS)
        now = time.time()
        rows = [(run_id, int(s), s / 50, "train_loss", float(v), now + s * 0.01) for s, v in zip(steps, loss)]
        rows += [(run_id, int(s), s // 50, "val_acc", float(np.clip(1 - v / 2.5, 0, 1)), now + s * 0.01)
                 for s, v in zip(steps[49::50], loss[49::50])]
        store.log_metrics(rows)
        store.finish(run_id, "completed")
        store.update_summary(run_id, {"best_val_acc": float(np.clip(1 - loss.min() / 2.5, 0, 1))})
        ids.append(run_id)
    return ids


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(script: Path, cwd: Path, port: int) -> subprocess.Popen:
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(port),
                               "--server.headless", "true"], cwd=cwd, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1)
            break
        except OSError:
            time.sleep(0.2)
    return server


def baseline_paint(tmp: Path) -> None:
    """The same measurement on a one-line Streamlit app: the floor this machine and browser set."""
    from playwright.sync_api import sync_playwright
    script = tmp / "hello.py"
    script.write_text('import streamlit as st\nst.title("Hello")\n')
    port = free_port()
    server = start_server(script, tmp, port)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), headless=True,
                                        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            paints = []
            for _ in range(4):
                page = browser.new_page()
                started = time.perf_counter()
                page.goto(f"http://127.0.0.1:{port}")
                page.get_by_role("heading", name="Hello").wait_for()
                paints.append(time.perf_counter() - started)
                page.close()
            browser.close()
        print(f"baseline: first paint of a one-line Streamlit app {np.median(paints[1:]):.3f} s (median of 3)")
    finally:
        server.terminate()
        server.wait(timeout=20)


def browser_figures(url: str) -> None:
    from playwright.sync_api import sync_playwright
    chromium = shutil.which("chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        started = time.perf_counter()
        page.goto(url)
        page.get_by_role("heading", name="Deep Learning Lab").wait_for()
        page.get_by_text("best validation accuracy").first.wait_for()
        print(f"first paint (new server, first visit) {time.perf_counter() - started:.3f} s")
        time.sleep(8)  # let the background imports (torch) finish, as a person reading the page would
        paints = []
        for _ in range(3):
            fresh = browser.new_page(viewport={"width": 1400, "height": 1000})
            started = time.perf_counter()
            fresh.goto(url)
            fresh.get_by_role("heading", name="Deep Learning Lab").wait_for()
            fresh.get_by_text("best validation accuracy").first.wait_for()
            paints.append(time.perf_counter() - started)
            fresh.close()
        print(f"first paint (new visitor) {np.median(paints):.3f} s (median of 3: title and run cards shown)")
        switches: dict[str, list[float]] = {}
        for _ in range(3):
            for title in ("Train", "Runs", "Media", "Concepts", "Home"):
                heading = "Deep Learning Lab" if title == "Home" else title
                started = time.perf_counter()
                page.get_by_role("link", name=title, exact=True).first.click()
                page.get_by_role("heading", name=heading, exact=True).wait_for()
                switches.setdefault(title, []).append(time.perf_counter() - started)
                time.sleep(0.5)
        for title, values in switches.items():
            print(f"switch to {title} {np.median(values):.3f} s (median of 3; first {values[0]:.3f} s)")
        browser.close()


def comparison_figure(ids: list[str]) -> None:
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params["compare"] = ",".join(ids)  # the Runs page preselects these rows
    at.run()
    at.switch_page("app_pages/runs.py").run()  # warm: imports and caches
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        at.run()
        timings.append(time.perf_counter() - started)
        assert not at.exception, at.exception
    assert at.get("plotly_chart"), "no chart was drawn"
    print(f"runs comparison ({RUNS} runs x {STEPS} steps) {min(timings):.3f} s (median {np.median(timings):.3f} s)")


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LAB_HOME"] = str(Path(tmp) / "lab")
        started = time.perf_counter()
        ids = fill_store()
        print(f"filled the store with {RUNS} runs x {STEPS} steps in {time.perf_counter() - started:.1f} s")
        baseline_paint(Path(tmp))
        port = free_port()
        server = start_server(ROOT / "app.py", ROOT, port)
        try:
            browser_figures(f"http://127.0.0.1:{port}")
        finally:
            server.terminate()
            server.wait(timeout=20)
        comparison_figure(ids)
    return 0


if __name__ == "__main__":
    sys.exit(main())
