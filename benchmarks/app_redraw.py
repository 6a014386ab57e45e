"""The live frame's budget in a real browser, and the in-app training rate against headless training.

Starts `streamlit run app.py` on 127.0.0.1, opens a page in Debian's Chromium (Playwright,
executable_path; never `playwright install`), presses Play and, over a window of ``--seconds``:

* browser redraws/s: distinct values of the page's "Step" counter (a MutationObserver sees each);
* in-app training steps/s: how far the Step counter advanced per second;
* the server's frame budget, phase by phase (training, snapshot and evaluation, figure building,
  handing the figures to Streamlit), read from the page's status line, and the browser's paint time
  (``Plotly.react`` per particle view, recorded by ui/live_plot.py);
* headless steps/s of the same configuration (one torch thread, as the server uses), measured in a
  subprocess right after the window, with the page open and paused.

One row per case; ``--busy N`` adds N busy processes beside it (a shared classroom machine).

    .venv/bin/python -m benchmarks.app_redraw [--seconds 15] [--cases playground:512:auto,compare:512:auto]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from drift_core.cli.app import headless_server

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
READ_STEP = """() => {
    for (const m of document.querySelectorAll('[data-testid="stMetric"]')) {
        const label = m.querySelector('[data-testid="stMetricLabel"]');
        const value = m.querySelector('[data-testid="stMetricValue"]');
        if (label && value && label.innerText.trim() === 'Step') return Number(value.innerText.trim().replace(/,/g, ''));
    }
    return null;
}"""
STATUS = re.compile(r"training (\d+) ms \((\d+) steps\) · snapshot (\d+) · figures (\d+) · send (\d+) ms")
HEADLESS = """
import json, sys, time, torch
torch.set_num_threads(1)
from drift_core.config import ExperimentConfig
from drift_core.run import Run
config = ExperimentConfig().with_values(json.loads(sys.argv[1]))
run = Run.compare(config) if sys.argv[2] == "compare" else Run.single(config)
run.advance(5)
start, steps = time.perf_counter(), 0
while time.perf_counter() - start < float(sys.argv[3]):
    steps += len(run.advance(5).records) // len(run.trainers)
print(steps / (time.perf_counter() - start))
"""


@contextlib.contextmanager
def busy_processes(n: int):
    """``n`` processes spinning on the CPU (what other users of a shared machine look like)."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def headless_rate(page: str, batch: int, seconds: float) -> float:
    """Training steps/s of the page's default configuration at batch ``batch``, headless, one thread."""
    out = subprocess.run(
        [sys.executable, "-c", HEADLESS, json.dumps({"batch_size": batch}), page, str(seconds)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return float(out.stdout.strip().splitlines()[-1])


def measure(page_obj, url: str, page: str, batch: int, spf: str, seconds: float) -> dict:
    page_obj.goto(f"{url}/{page}?batch_size={batch}&steps=1000000&steps_per_frame={spf}")
    page_obj.wait_for_selector('[data-testid="stMetric"]', timeout=120_000)
    page_obj.locator(".st-key-play button").first.click()
    time.sleep(4)  # warm up
    page_obj.evaluate(OBSERVE)
    page_obj.evaluate("() => { window.__driftPaints = {}; }")
    step0, t0 = page_obj.evaluate(READ_STEP), time.time()
    phases = []
    while time.time() - t0 < seconds:
        time.sleep(0.4)
        text = (
            page_obj.locator("text=· snapshot").first.inner_text()
            if page_obj.locator("text=· snapshot").count()
            else ""
        )
        found = STATUS.search(text)
        if found:
            phases.append(tuple(int(g) for g in found.groups()))
    elapsed = time.time() - t0
    step1 = page_obj.evaluate(READ_STEP)
    distinct = page_obj.evaluate("() => { window.__stepObserver.disconnect(); return window.__stepValues.size; }")
    paints = page_obj.evaluate("() => window.__driftPaints")
    page_obj.locator(".st-key-play button").first.click()
    view_paints = [ms for name, values in paints.items() if name.startswith("view_") for ms in values]
    curve_paints = [ms for name, values in paints.items() if name.startswith("curve_") for ms in values]
    med = lambda xs: statistics.median(xs) if xs else float("nan")  # noqa: E731
    return {
        "redraws": max(distinct - 1, 0) / elapsed,
        "app_rate": (step1 - step0) / elapsed,
        "train": med([p[0] for p in phases]),
        "steps": med([p[1] for p in phases]),
        "snapshot": med([p[2] for p in phases]),
        "figures": med([p[3] for p in phases]),
        "send": med([p[4] for p in phases]),
        "paint": med(view_paints),
        "curve_paint": med(curve_paints),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--port", type=int, default=8609)
    parser.add_argument(
        "--cases",
        default="playground:512:auto,playground:512:5,playground:2048:auto,compare:512:auto",
        help="comma-separated page:batch:steps_per_frame",
    )
    parser.add_argument("--busy", type=int, default=0, help="busy processes beside the server and the browser")
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("Debian's chromium is missing: run `make browser`")
    from playwright.sync_api import sync_playwright

    with headless_server(port=args.port, health_timeout_s=120) as server:
        url = server.url
        print(
            f"machine: {os.cpu_count()} CPUs; {args.busy} busy process(es) beside it; "
            f"load average at start {os.getloadavg()[0]:.1f}"
        )
        print(
            "| page | N | steps/frame | redraws/s | in-app steps/s | headless steps/s | in-app / headless | "
            "frame ms: train (steps) · snapshot · figures · send | paint ms: view · curves | load |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        with busy_processes(args.busy), sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=chromium,
                headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
            )
            for case in args.cases.split(","):
                page, batch, spf = case.split(":")
                tab = browser.new_page(viewport={"width": 1500, "height": 1100})
                m = measure(tab, url, page, int(batch), spf, args.seconds)
                headless = headless_rate(page, int(batch), min(args.seconds, 8.0))
                print(
                    f"| {page} | {batch} | {spf} | {m['redraws']:.1f} | {m['app_rate']:.0f} | {headless:.0f} | "
                    f"{m['app_rate'] / headless:.0%} | {m['train']:.0f} ({m['steps']:.0f}) · {m['snapshot']:.0f} · "
                    f"{m['figures']:.0f} · {m['send']:.0f} | {m['paint']:.0f} · {m['curve_paint']:.0f} | "
                    f"{os.getloadavg()[0]:.1f} |",
                    flush=True,
                )
                tab.close()
            browser.close()


if __name__ == "__main__":
    main()
