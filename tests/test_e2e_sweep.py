"""What the user of issue #11 did: run a sweep from the Sweep page and keep the page open while it runs.

The sweep must not be starved by the page that watches it: a small grid (2 × 2 cells × 60 steps, the
page's default network) is first timed headless (``run_sweep`` in this process, one torch thread like
the app's sweep worker, its own empty cache folder), then run from the Sweep page in Chromium with
the page open (the server has its own empty ``DRIFT_CACHE_DIR``, so nothing comes from a cache). The
page must finish within twice the headless time plus the measured start-up of a worker process (a
fresh Python importing torch: seconds on a loaded 2-core machine) and 5 s, show no exception, log no
traceback, and show the same numbers as the headless run.

The measured times go to test-artifacts/sweep_page_open.txt.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from drift_core.config import ExperimentConfig
from drift_core.sweep import SweepSpec, run_sweep
from tests.conftest import ROOT
from tests.e2e_support import serve_app
from tests.test_e2e_browser import EXCEPTION, _click, _no_errors, _open_plain, _wait_idle, browser, page  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

STEPS = 60
X_VALUES = (0, 1)  # K
Y_VALUES = (0.05, 0.2)  # tau
SLACK_S = 5.0  # on top of the measured start-up of a worker process (see startup_seconds)
PAGE_LIMIT_S = 600.0  # give up waiting (the unfixed app needs many minutes)


@pytest.fixture(scope="module")
def sweep_server(tmp_path_factory, artifacts_dir):
    cache = tmp_path_factory.mktemp("server-cache")
    log_path = artifacts_dir / "streamlit-e2e-sweep.log"
    with serve_app(log_path, env={"DRIFT_CACHE_DIR": str(cache)}) as url:
        yield url, log_path, cache


def startup_seconds() -> float:
    """What starting the sweep's worker costs on this machine now: a fresh Python importing what the
    worker imports (torch, the sweep engine). The page's first sweep pays it once (the worker's
    process server is started when the Sweep page opens, so often less)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import drift_core.sweep"], cwd=ROOT, check=True, timeout=300)
    return time.perf_counter() - start


def headless_seconds(tmp_path) -> tuple[float, object]:
    """Wall time of the page's sweep run by ``run_sweep`` here (one torch thread per trial, as everywhere),
    cold cache."""
    spec = SweepSpec(ExperimentConfig(), "K", X_VALUES, "tau", Y_VALUES, steps=STEPS)
    run_sweep(SweepSpec(ExperimentConfig(), "K", (0,), "tau", (0.05,), steps=1), directory=tmp_path / "warm")
    start = time.perf_counter()
    result = run_sweep(spec, directory=tmp_path / "headless")
    return time.perf_counter() - start, result


def test_sweep_with_the_page_open_is_not_starved(page, sweep_server, tmp_path, artifacts_dir):  # noqa: F811
    url, log_path, cache = sweep_server
    startup_s = startup_seconds()
    headless_s, headless = headless_seconds(tmp_path)
    assert headless.complete and headless.cached_trials == 0

    _open_plain(page, url + "/sweep")
    page.locator(".st-key-sw_x_values").get_by_role("button", name="Remove 2").click()  # K: 0, 1
    _wait_idle(page)
    page.locator(".st-key-sw_y_values").get_by_role("button", name="Remove 0.02").click()  # tau: 0.05, 0.2
    _wait_idle(page)
    steps = page.locator(".st-key-steps input")
    steps.fill(str(STEPS))
    steps.press("Enter")
    page.get_by_text(f"2 × 2 = 4 cells × {STEPS} steps").wait_for(timeout=60_000)
    _wait_idle(page)

    _click(page, "sw_run")
    start = time.perf_counter()
    finished = page.get_by_text("Final particles")
    page_s = None
    while time.perf_counter() - start < PAGE_LIMIT_S:
        if finished.count() > 0:
            page_s = time.perf_counter() - start
            break
        if page.locator(EXCEPTION).count() or page.get_by_text("The sweep failed").count():
            break
        time.sleep(0.25)
    limit_s = 2 * headless_s + startup_s + SLACK_S
    if page_s is None:
        last = page.evaluate(
            "() => { const p = document.querySelector('[data-testid=\"stProgress\"]'); "
            "return p ? p.innerText.trim() : 'no progress bar'; }"
        )
        shown = f"did not finish in {PAGE_LIMIT_S:.0f} s (progress: {last})"
    else:
        job_s = page.evaluate("""() => { for (const c of document.querySelectorAll('[data-testid="stCaptionContainer"]')) {
            const m = c.innerText.match(/from the cache · ([0-9.]+) s/); if (m) return m[1]; } return '?'; }""")
        shown = f"{page_s:.1f} s (the job itself: {job_s} s)"
    line = (
        f"2x2 sweep x {STEPS} steps, default network: headless {headless_s:.1f} s, with the Sweep page open "
        f"{shown} (limit 2 x headless + {startup_s:.1f} s worker start-up + {SLACK_S:.0f} s = {limit_s:.1f} s; "
        f"{os.cpu_count()} CPUs)"
    )
    print(line)
    (artifacts_dir / "sweep_page_open.txt").write_text(line + "\n")

    _no_errors(page)
    assert page.get_by_text("The sweep failed").count() == 0, page.get_by_text("The sweep failed").first.inner_text()
    assert page_s is not None, f"the sweep did not finish within {PAGE_LIMIT_S:.0f} s with the page open ({line})"
    assert page_s <= limit_s, f"the sweep was starved with its page open: {line}"

    _wait_idle(page)
    page.wait_for_selector(".js-plotly-plot", timeout=60_000)
    page.wait_for_function("() => document.querySelectorAll('[data-testid=\"stImage\"]').length === 4", timeout=60_000)
    _no_errors(page)
    assert len(list(cache.glob("*.npz"))) == 4  # the server's cache got every cell
    # the page shows the headless run's numbers (same spec, same seed), cell by cell in grid order
    captions = [
        t.strip()
        for t in page.locator('[data-testid="stCaptionContainer"]').all_inner_texts()
        if " · energy distance: " in t
    ]
    expected = [
        f"{headless.spec.cell_label(i, j)} · energy distance: {headless.trial(i, j).metrics['energy']:.3g}"
        for i in range(2)
        for j in range(2)
    ]
    assert captions == expected
    log = log_path.read_text()
    assert "Traceback" not in log, log[-4000:]
