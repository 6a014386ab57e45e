"""Real-browser end-to-end test: `streamlit run app.py` on 127.0.0.1, driven by Playwright's Python
package through Debian's Chromium (``executable_path``; never ``playwright install``).

Opens every page, presses Play, checks the "Step" counter shown in the page increases (proving that
the ``run_every`` fragment really animates, which AppTest cannot) and that no exception element
appears; saves a screenshot of each page under test-artifacts/. The Playground test also measures the
redraw rate at N = 512 (distinct step-counter values shown per second) and records it in
test-artifacts/redraw_rate.txt: a measurement, not a timed assertion.
"""

from __future__ import annotations

import os
import shutil
import time
import urllib.parse
from pathlib import Path

import pytest

from benchmarks.app_redraw import OBSERVE as OBSERVE_STEP_VALUES
from tests.e2e_support import serve_app

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
READ_STEP = """() => {
    for (const m of document.querySelectorAll('[data-testid="stMetric"]')) {
        const label = m.querySelector('[data-testid="stMetricLabel"]');
        const value = m.querySelector('[data-testid="stMetricValue"]');
        if (label && value && label.innerText.trim() === 'Step') return value.innerText.trim();
    }
    return null;
}"""
FIRST_PARTICLE = """() => {
    const plot = document.querySelector('.js-plotly-plot');
    if (!plot || !plot._fullData) return null;
    const trace = plot._fullData.find(t => t.name === 'generated');  // decoded (typed arrays in .data)
    return trace ? [Number(trace.x[0]), Number(trace.y[0])] : null;
}"""
EXCEPTION = '[data-testid="stException"]'


class AppServer(str):
    """The app's base URL (a str), with the path of the server's log (``log_path``)."""

    log_path: Path


@pytest.fixture(scope="module")
def app_url(request, artifacts_dir):
    """A `streamlit run app.py` server of the test module's own, logging to
    test-artifacts/streamlit-<module>.log."""
    log_path = artifacts_dir / f"streamlit-{request.module.__name__.rsplit('.', 1)[-1]}.log"
    with serve_app(log_path) as base:
        url = AppServer(base)
        url.log_path = log_path
        yield url
    log = log_path.read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in log, f"the server logged a traceback during {request.module.__name__}:\n{log[-3000:]}"


@pytest.fixture(scope="module")
def browser(artifacts_dir):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail(
            "Debian's chromium is not installed: run `make browser` (apt-get install chromium fonts-liberation)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1500, "height": 1100})
    p = context.new_page()
    p.console_errors = []  # the page's console errors and uncaught exceptions, for failure messages

    def record(text: str) -> None:
        p.console_errors.append(text[:300])

    p.on("console", lambda message: record(message.text) if message.type == "error" else None)
    p.on("pageerror", lambda error: record(str(error)))
    yield p
    context.close()


def _wait_idle(page, timeout_ms: int = 90_000) -> None:
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout_ms)


def _step(page, timeout_s: float = 60) -> int:
    """The value of the metric labelled "Step" shown in the page."""
    deadline = time.time() + timeout_s
    while True:
        text = page.evaluate(READ_STEP)
        if text is not None:
            return int(text.replace(",", ""))
        if time.time() > deadline:
            pytest.fail("no metric labelled 'Step' in the page")
        time.sleep(0.25)


def _wait_for_step_above(page, value: int, timeout_s: float = 90) -> int:
    deadline = time.time() + timeout_s
    current = value
    while time.time() < deadline:
        current = _step(page)
        if current > value:
            return current
        time.sleep(0.25)
    pytest.fail(f"the Step counter did not rise above {value} within {timeout_s:.0f} s (last {current})")


def _no_errors(page) -> None:
    assert page.locator(EXCEPTION).count() == 0, page.locator(EXCEPTION).first.inner_text()


def _open(page, url: str) -> None:
    page.goto(url)
    _wait_idle(page)
    page.wait_for_selector('[data-testid="stMetric"]', timeout=90_000)
    _no_errors(page)


def _click(page, key: str) -> None:
    """Click the button whose Streamlit key is ``key`` (its container has the class st-key-KEY)."""
    page.locator(f".st-key-{key} button").first.click()


def test_home(page, app_url, artifacts_dir):
    page.goto(app_url)
    _wait_idle(page)
    page.get_by_text("Where to go").wait_for(timeout=60_000)
    page.wait_for_selector(".js-plotly-plot", timeout=60_000)
    _no_errors(page)
    page.screenshot(path=str(artifacts_dir / "app-home.png"), full_page=True)


def test_playground_plays_and_measures_redraw_rate(page, app_url, artifacts_dir):
    _open(page, app_url + "/playground?batch_size=512&steps=100000&steps_per_frame=2")
    # the particle view is updated in place (ui/live_plot.py): the same plot node must survive playing
    page.wait_for_function(
        "() => { const d = document.querySelector('div.drift-live-plot'); return !!(d && d._fullData); }",
        timeout=60_000,
    )
    page.evaluate("() => { window.__liveView = document.querySelector('div.drift-live-plot'); }")
    first_particle = page.evaluate(FIRST_PARTICLE)
    start = _step(page)
    _click(page, "play")
    _wait_for_step_above(page, start + 4)
    _wait_idle_frame = time.time() + 30
    while page.evaluate(FIRST_PARTICLE) == first_particle and time.time() < _wait_idle_frame:
        time.sleep(0.25)
    assert page.evaluate(FIRST_PARTICLE) != first_particle, "the particle picture did not change while playing"
    # redraw rate: count distinct Step values the page shows over a fixed window (a MutationObserver
    # sees every change, however fast)
    page.evaluate(OBSERVE_STEP_VALUES)
    # and it stays on the page between frames (a detached moment shows as a blank flash)
    page.evaluate("""() => { window.__detached = 0;
        window.__detachProbe = setInterval(() => { if (!window.__liveView.isConnected) window.__detached++; }, 5); }""")
    window_s = 10.0
    time.sleep(window_s)
    detached = page.evaluate("() => { clearInterval(window.__detachProbe); return window.__detached; }")
    frames = page.evaluate("() => { window.__stepObserver.disconnect(); return window.__stepValues.size; }")
    rate = max(frames - 1, 0) / window_s
    line = (
        f"playground redraw rate at N=512, 2 steps/frame: {rate:.1f} redraws/s "
        f"({frames} distinct Step values in {window_s:.0f} s; {os.cpu_count()} CPUs)"
    )
    print(line)
    (artifacts_dir / "redraw_rate.txt").write_text(line + "\n")
    assert frames >= 2  # the counter advanced while we watched
    assert page.evaluate(
        "() => window.__liveView.isConnected && document.querySelector('div.drift-live-plot') === window.__liveView"
    ), "the particle view was rebuilt instead of updated in place"
    assert detached == 0, f"the particle view left the page {detached} times while playing"
    _no_errors(page)
    _click(page, "play")
    _wait_idle(page)
    page.screenshot(path=str(artifacts_dir / "app-playground.png"), full_page=True)


def test_playground_upload_bad_then_good_csv(page, app_url, artifacts_dir):
    _open(page, app_url + "/playground?batch_size=128")
    page.get_by_text("Your own points (CSV of x,y rows)").click()
    upload = page.locator('.st-key-upload_csv [data-testid="stFileUploaderDropzoneInput"]')
    upload.set_input_files(files=[{"name": "bad.csv", "mimeType": "text/csv", "buffer": b"x,y\n1,2\n3,oops\n"}])
    page.get_by_text("Could not use bad.csv").wait_for(timeout=60_000)
    _no_errors(page)
    rows = "\n".join(f"{0.5 * (i % 2) - 0.25},{0.01 * (i % 7)}" for i in range(60))
    upload.set_input_files(
        files=[{"name": "two_lines.csv", "mimeType": "text/csv", "buffer": ("x,y\n" + rows).encode()}]
    )
    page.get_by_text("Loaded 60 points from two_lines.csv").wait_for(timeout=60_000)
    _wait_idle(page)
    _no_errors(page)
    page.screenshot(path=str(artifacts_dir / "app-playground-upload.png"), full_page=True)


def test_compare_plays_in_lockstep(page, app_url, artifacts_dir):
    _open(page, app_url + "/compare?batch_size=256&fairness=true&method=lookahead&K=2")
    start = _step(page)
    _click(page, "play")
    _wait_for_step_above(page, start + 4)
    _no_errors(page)
    _click(page, "play")
    _wait_idle(page)
    assert page.locator(".js-plotly-plot").count() >= 3  # three arms side by side
    page.screenshot(path=str(artifacts_dir / "app-compare.png"), full_page=True)


LENS_TITLES = """() => [...document.querySelectorAll('.js-plotly-plot')]
    .map(g => g.layout && g.layout.title ? g.layout.title.text : '').filter(t => t.includes('kernel lens'))"""
FAR_PARTICLE = """() => {
    const isGenerated = t => t.name && t.name.startsWith('generated');
    const gd = [...document.querySelectorAll('.js-plotly-plot')].find(g => g._fullData && g._fullData.some(isGenerated));
    if (!gd) return null;  // the particle chart has not been drawn yet
    const fl = gd._fullLayout, tr = gd._fullData.find(isGenerated);
    const px = i => [fl.xaxis.l2p(Number(tr.x[i])) + fl.xaxis._offset, fl.yaxis.l2p(Number(tr.y[i])) + fl.yaxis._offset];
    const p0 = px(0);
    let best = 1, far = -1;
    for (let i = 1; i < tr.x.length; i++) { const p = px(i), d = Math.hypot(p[0] - p0[0], p[1] - p0[1]); if (d > far) { far = d; best = i; } }
    const r = gd.getBoundingClientRect(), p = px(best);
    return [r.left + p[0], r.top + p[1]];
}"""


def _lens_title(page, timeout_s: float = 30.0) -> str:
    """The kernel lens chart's title, waiting while Streamlit remounts the chart (it is briefly absent)."""
    deadline = time.time() + timeout_s
    while not (titles := page.evaluate(LENS_TITLES)) and time.time() < deadline:
        time.sleep(0.2)
    assert titles, "the kernel lens chart is missing"
    return titles[0]


def test_inspector_plays_through_a_step(page, app_url, artifacts_dir):
    _open(page, app_url + "/inspector?tau=0.2&method=lookahead&K=2")
    # click a particle (the one farthest from particle 0): the kernel lens follows the click
    _click(page, "next_stage")
    _wait_idle(page)
    assert "particle 0:" in _lens_title(page)
    deadline = time.time() + 30
    while (target := page.evaluate(FAR_PARTICLE)) is None and time.time() < deadline:
        time.sleep(0.25)
    assert target is not None, "the inspector's particle chart never appeared"
    page.mouse.click(*target)
    deadline = time.time() + 30
    while "particle 0:" in _lens_title(page) and time.time() < deadline:
        time.sleep(0.25)
    assert "particle 0:" not in _lens_title(page), "clicking a particle did not open its kernel lens"
    start = _step(page)
    _click(page, "play")
    _wait_for_step_above(page, start)
    _no_errors(page)
    _click(page, "play")
    _wait_idle(page)
    time.sleep(1.5)  # let the last fragment delta land before the picture
    page.screenshot(path=str(artifacts_dir / "app-inspector.png"), full_page=True)


def _open_plain(page, url: str) -> None:
    """Open a page without metric cards (the Sweep page) and wait until its script is idle."""
    page.goto(url)
    _wait_idle(page)
    page.get_by_text("Run sweep").first.wait_for(timeout=90_000)
    _no_errors(page)


def test_sweep_page_runs_a_tiny_grid_and_opens_a_cell(page, app_url, artifacts_dir):
    """The Sweep page: a 2×2 grid runs in the background thread (progress bar), the heatmap and the
    thumbnails appear, clicking a heatmap cell selects it, and "Open in Playground" carries its config."""
    _open_plain(page, app_url + "/sweep?batch_size=64&width=16&depth=1")
    page.locator(".st-key-sw_x_values").get_by_role("button", name="Remove 2").click()  # K: 0, 1
    _wait_idle(page)
    page.locator(".st-key-sw_y_values").get_by_role("button", name="Remove 0.02").click()  # tau: 0.05, 0.2
    _wait_idle(page)
    steps = page.locator(".st-key-steps input")
    steps.fill("15")
    steps.press("Enter")
    page.get_by_text("2 × 2 = 4 cells × 15 steps").wait_for(timeout=60_000)
    _click(page, "sw_run")
    page.get_by_text("Final particles").wait_for(timeout=240_000)
    _wait_idle(page)
    _no_errors(page)
    page.wait_for_selector(".js-plotly-plot", timeout=60_000)
    assert page.locator('[data-testid="stImage"]').count() == 4
    time.sleep(1.0)
    page.screenshot(path=str(artifacts_dir / "app-sweep.png"), full_page=True)
    points = page.locator(".js-plotly-plot .scatterlayer path.point")
    assert points.count() == 4
    points.nth(3).click(force=True)  # row tau = 0.2, column K = 1
    page.get_by_text("energy distance of tau=0.2, K=1:").wait_for(timeout=60_000)  # the selected cell's seeds
    _click(page, "sw_open")
    page.wait_for_url("**/playground**", timeout=60_000)
    page.wait_for_selector('[data-testid="stMetric"]', timeout=90_000)
    _no_errors(page)
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(page.url).query))
    assert query.get("tau") == "0.2" and query.get("K") == "1"
