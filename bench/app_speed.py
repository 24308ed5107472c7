"""App speed: first paint, page switches, and the Runs comparison with 100 runs x 5,000 steps.

    python bench/app_speed.py

Starts `streamlit run app.py` headless on a free port against a fresh LAB_HOME filled with 100
synthetic runs of 5,000 logged steps each, drives it with headless Chromium (Playwright), and prints:
  baseline               a new visitor's first paint of a one-line Streamlit app: this machine's floor
  first paint            seconds from opening the app until the Home page's title and runs are shown,
                         for new visitors (fresh browser context, empty cache), interleaved with the baseline
  switch to <page>       seconds from clicking a page in the sidebar until its title is shown, each
                         starting from a page that has finished running and drawing
  runs comparison        server seconds to render the Runs page comparing all 100 runs (AppTest), after the
                         app's background imports have finished
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
    from core.presets import preset
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


BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VISITS = 7
SWITCHES = 5


def settled(page) -> None:
    """Wait until the script has finished and the browser has had a moment to draw what it sent."""
    page.wait_for_selector('[data-test-script-state="notRunning"]', state="attached")
    time.sleep(1.0)


def paint(browser, url: str, heading: str, text: str) -> float:
    """A new visitor (fresh context, empty cache): seconds until the heading and `text` are shown."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    started = time.perf_counter()
    page.goto(url)
    page.get_by_role("heading", name=heading).wait_for()
    page.get_by_text(text).first.wait_for()
    seconds = time.perf_counter() - started
    page.close()
    return seconds


def browser_figures(app_url: str, hello_url: str) -> None:
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), headless=True, args=BROWSER_ARGS)
        first = paint(browser, app_url, "Deep Learning Lab", "best validation accuracy")
        print(f"first paint (new server, first visit) {first:.3f} s")
        paint(browser, hello_url, "Hello", "Hello")  # the baseline server's first visit, not counted
        time.sleep(8)  # let the background imports (torch) finish, as a person reading the page would
        ours, baseline = [], []
        for _ in range(VISITS):  # interleaved, so both see the same machine load
            baseline.append(paint(browser, hello_url, "Hello", "Hello"))
            ours.append(paint(browser, app_url, "Deep Learning Lab", "best validation accuracy"))
        print(f"baseline: first paint of a one-line Streamlit app {np.median(baseline):.3f} s "
              f"(median of {VISITS} new visitors)")
        print(f"first paint (new visitor) {np.median(ours):.3f} s (median of {VISITS}: title and run cards shown; "
              f"{np.median(ours) - np.median(baseline):+.3f} s against the baseline's median)")
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(app_url)
        page.get_by_role("heading", name="Deep Learning Lab").wait_for()
        settled(page)
        switches: dict[str, list[float]] = {}
        for _ in range(SWITCHES):
            for title in ("Train", "Runs", "Media", "Concepts", "Home"):
                heading = "Deep Learning Lab" if title == "Home" else title
                started = time.perf_counter()
                page.get_by_role("link", name=title, exact=True).first.click()
                page.get_by_role("heading", name=heading, exact=True).wait_for()
                switches.setdefault(title, []).append(time.perf_counter() - started)
                settled(page)  # the next switch starts from a finished page
        for title, values in switches.items():
            print(f"switch to {title} {np.median(values):.3f} s (median of {SWITCHES}; first {values[0]:.3f} s)")
        browser.close()


def comparison_figure(ids: list[str]) -> None:
    from streamlit.testing.v1 import AppTest
    from ui import warmup
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params["compare"] = ",".join(ids)  # the Runs page preselects these rows
    at.run()
    at.switch_page("app_pages/runs.py").run()  # warm: imports and caches
    warmup.wait()  # the app imports torch in the background after its first page; measure after that
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        at.run()
        timings.append(time.perf_counter() - started)
        assert not at.exception, at.exception
    assert at.get("plotly_chart"), "no chart was drawn"
    print(f"runs comparison ({RUNS} runs x {STEPS} steps) {np.median(timings):.3f} s "
          f"(median of 5; best {min(timings):.3f} s)")


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LAB_HOME"] = str(Path(tmp) / "lab")
        started = time.perf_counter()
        ids = fill_store()
        print(f"filled the store with {RUNS} runs x {STEPS} steps in {time.perf_counter() - started:.1f} s")
        hello = Path(tmp) / "hello.py"
        hello.write_text('import streamlit as st\nst.title("Hello")\n')
        ports = free_port(), free_port()
        servers = [start_server(ROOT / "app.py", ROOT, ports[0]), start_server(hello, Path(tmp), ports[1])]
        try:
            browser_figures(*(f"http://127.0.0.1:{port}" for port in ports))
        finally:
            for server in servers:
                server.terminate()
                server.wait(timeout=20)
        comparison_figure(ids)
    return 0


if __name__ == "__main__":
    sys.exit(main())
