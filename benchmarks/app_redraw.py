"""App redraw rate in a real browser: Playground (and Compare) at N = 512, several steps-per-frame settings.

Starts `streamlit run app.py` on 127.0.0.1, opens the Playground in Debian's Chromium (Playwright,
executable_path; never `playwright install`), presses Play and counts, with a MutationObserver, the
distinct values of the page's "Step" counter over a window (= redraws the browser showed), and the
frames the server drew (from the Playground's caption; Compare has no such caption). Prints one table
row per setting.

    .venv/bin/python -m benchmarks.app_redraw [--seconds 10] [--port 8609] [--pages playground,compare]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OBSERVE = """() => {
    window.__stepValues = new Set();
    const read = () => {
        for (const m of document.querySelectorAll('[data-testid="stMetric"]')) {
            const label = m.querySelector('[data-testid="stMetricLabel"]');
            const value = m.querySelector('[data-testid="stMetricValue"]');
            if (label && value && label.innerText.trim() === 'Step') window.__stepValues.add(value.innerText.trim());
        }
    };
    window.__stepObserver = new MutationObserver(read);
    window.__stepObserver.observe(document.body, {subtree: true, childList: true, characterData: true});
    read();
}"""


def _frames_drawn(page) -> int | None:
    if page.locator("text=frames drawn").count() == 0:
        return None
    text = page.locator("text=frames drawn").first.inner_text()
    return int(re.search(r"(\d+) frames drawn", text).group(1))


def _frame_ms(page) -> float | None:
    """The server's time for the last frame body (training + drawing), from the page's caption."""
    if page.locator("text=frames drawn").count() == 0:
        return None
    text = page.locator("text=frames drawn").first.inner_text()
    found = re.search(r"total (\d+) ms", text)
    return float(found.group(1)) if found else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--port", type=int, default=8609)
    parser.add_argument("--steps-per-frame", default="1,2,5")
    parser.add_argument("--pages", default="playground", help="comma-separated: playground, compare")
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("Debian's chromium is missing: run `make browser`")
    from playwright.sync_api import sync_playwright

    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.address",
           "127.0.0.1", "--server.port", str(args.port), "--server.fileWatcherType", "none",
           "--browser.gatherUsageStats", "false"]
    server = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    url = f"http://127.0.0.1:{args.port}"
    try:
        for _ in range(240):
            try:
                if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.5)
        print(f"machine: {os.cpu_count()} CPUs; load average at start {os.getloadavg()[0]:.1f}")
        print("| page | N | steps/frame | browser redraws/s | server frames/s | training steps/s per arm | "
              "server frame body ms (median) | load avg |")
        print("|---|---|---|---|---|---|---|---|")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True,
                                         args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
            settings = [(name, int(s)) for name in args.pages.split(",") for s in args.steps_per_frame.split(",")]
            for name, spf in settings:
                page = browser.new_page(viewport={"width": 1500, "height": 1100})
                page.goto(f"{url}/{name}?batch_size=512&steps=1000000&steps_per_frame={spf}")
                page.wait_for_selector('[data-testid="stMetric"]', timeout=120_000)
                page.locator(".st-key-play button").click()
                time.sleep(3)  # warm up
                page.evaluate(OBSERVE)
                frames0, t0 = _frames_drawn(page), time.time()
                bodies = []
                while time.time() - t0 < args.seconds:
                    time.sleep(0.5)
                    ms = _frame_ms(page)
                    if ms is not None:
                        bodies.append(ms)
                distinct = page.evaluate("() => { window.__stepObserver.disconnect(); return window.__stepValues.size; }")
                frames1, t1 = _frames_drawn(page), time.time()
                elapsed = t1 - t0
                redraws = max(distinct - 1, 0) / elapsed
                fps = "—" if frames0 is None else f"{(frames1 - frames0) / elapsed:.1f}"
                steps = "—" if frames0 is None else f"{(frames1 - frames0) / elapsed * spf:.0f}"
                body = f"{statistics.median(bodies):.0f}" if bodies else "—"
                print(f"| {name} | 512 | {spf} | {redraws:.1f} | {fps} | {steps} | {body} | "
                      f"{os.getloadavg()[0]:.1f} |", flush=True)
                page.close()
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=15)


if __name__ == "__main__":
    main()
