"""Load test: more browser sessions than cores on ONE ``streamlit run app.py`` server.

Each session is its own Playwright browser context (separate cookies and Streamlit session) driving
Debian's Chromium (``executable_path=/usr/bin/chromium``; never ``playwright install``). Every session
opens the Playground with its own dataset, seed and settings in the URL query parameters, presses Play
and lets it run for ``--seconds``; every third session is a restless student: every few seconds it
clicks Play/Pause, Step and Reset in quick succession and moves the τ slider with the keyboard. Meanwhile
the script samples the server process's resident memory (``VmRSS`` in ``/proc/PID/status``), and after
the tabs close it keeps sampling while the server drops their sessions (``--server.disconnectedSessionTTL``
is set short for that). At the end it checks, per session:

* no error: no exception element in the page, no uncaught page error, no Python traceback in the server log
  while the sessions live (tracebacks after the browser closes them all at once are reported, not counted);
* the step counter shown in the page advanced;
* the configuration shown is the one requested (the particle view's title "method · τ · N", the
  dataset selector, and the URL the page writes back), so sessions did not leak state into each other;

and for the server: its memory stayed bounded (the growth over the second half of the run is small
compared with the total; histories are ring buffers) and fell back once the tabs were closed: by at
least half of what the sessions added to a server that has loaded the engine (one visit to the
Playground, closed, before the sessions open; torch and the engine stay imported for the server's life).

    python -m benchmarks.load_test [--sessions 12] [--seconds 120] [--port 8631] [--url http://host:port]

Prints a table per session and a memory table; exits 1 if a check fails.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import shutil
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from drift_core.cli.app import headless_server

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]

# Twelve different configurations, each with its own dataset and seed (flat ExperimentConfig field
# names = URL query parameters).
CONFIGS: list[dict[str, str]] = [
    {"dataset": "moons", "K": "2", "tau": "0.1", "batch_size": "256", "seed": "1"},
    {"dataset": "checkerboard", "tau": "0.05", "batch_size": "512", "seed": "2"},
    {"dataset": "8gaussians", "K": "1", "tau": "0.05", "batch_size": "128", "seed": "3"},
    {"dataset": "swissroll", "tau": "0.07", "batch_size": "256", "seed": "4"},
    {"dataset": "rings", "K": "3", "tau": "0.1", "batch_size": "64", "seed": "5"},
    {"dataset": "bimodal", "tau": "0.1", "batch_size": "128", "init": "far", "normalize_distance": "true", "seed": "6"},
    {"dataset": "moons", "tau": "0.2", "batch_size": "64", "lr": "0.002", "seed": "7"},
    {"dataset": "spirals", "K": "4", "tau": "0.03", "batch_size": "256", "seed": "8"},
    {"dataset": "25gaussians", "K": "1", "tau": "0.05", "batch_size": "256", "seed": "9"},
    {"dataset": "checkerboard", "K": "2", "tau": "0.07", "batch_size": "128", "seed": "10"},
    {"dataset": "swissroll", "K": "1", "tau": "0.1", "batch_size": "64", "seed": "11"},
    {"dataset": "8gaussians", "tau": "0.15", "batch_size": "512", "seed": "12"},
]
RESTLESS_EVERY = 3
"""Every this many sessions, one clicks and slides around while the others play."""

READ_STATE = r"""() => {
    const out = {step: null, title: null, dataset: null, exceptions: 0, warnings: []};
    for (const m of document.querySelectorAll('[data-testid="stMetric"]')) {
        const label = m.querySelector('[data-testid="stMetricLabel"]');
        const value = m.querySelector('[data-testid="stMetricValue"]');
        if (label && value && label.innerText.trim() === 'Step') out.step = value.innerText.trim();
    }
    const title = document.querySelector('.js-plotly-plot .gtitle');
    if (title) out.title = title.textContent;
    for (const input of document.querySelectorAll('[data-testid="stSelectbox"] input')) {
        if (input.getAttribute('aria-label') === 'Dataset') out.dataset = input.value;
    }
    out.exceptions = document.querySelectorAll('[data-testid="stException"]').length;
    for (const a of document.querySelectorAll('[data-testid="stAlert"]')) out.warnings.push(a.innerText.trim().slice(0, 160));
    return out;
}"""


@dataclass
class Session:
    index: int
    requested: dict[str, str]
    page: object = None
    steps: list[tuple[float, int]] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    last_state: dict = field(default_factory=dict)
    url_params: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    restless: bool = False
    actions: int = 0

    def label(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.requested.items())


WARM_UP_DROP_S = 30.0
"""Seconds after the first visitor's tab closes before the engine-loaded memory is read: the session
TTL (5 s here) plus the app's memory janitor's rounds (10 s each)."""


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` in MB, from /proc/PID/status (psutil is not needed)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def expected_title_parts(requested: dict[str, str]) -> list[str]:
    """What the particle view's title must contain for this configuration ("lookahead K=2 · τ = 0.1 · N = 256")."""
    k = requested.get("K", "0")
    label = f"lookahead K={k}" if k != "0" else "baseline"
    tau = f"τ = {float(requested.get('tau', '0.05')):g}"
    n = f"N = {int(requested.get('batch_size', '512'))}"
    return [label, tau, n]


def restless(s: Session, step: int) -> None:
    """What a restless student does between two looks: Play/Pause, Step and Reset in quick succession,
    then τ one notch up or down with the keyboard, then Play again."""
    page = s.page
    try:
        for key in ("play", "step", "play", "reset"):
            page.locator(f".st-key-{key} button").first.click(timeout=60_000)
        thumb = page.locator(".st-key-tau input[type='range']").first
        thumb.focus(timeout=60_000)
        thumb.press("ArrowRight" if step % 2 == 0 else "ArrowLeft")
        # then make sure it plays: clicks sent faster than the server reruns reach it together, and it
        # runs their callbacks in one rerun, so the run may already be playing again
        play = page.locator(".st-key-play button").first
        if "Play" in play.inner_text(timeout=60_000):
            play.click(timeout=60_000)
        s.actions += 1
    except Exception as err:  # noqa: BLE001 - a click that cannot land is a finding, reported, not a crash
        lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
        why = " / ".join(lines[:1] + lines[-2:])[:400]  # the error, and what Playwright was waiting for
        s.problems.append(f"restless action failed ({type(err).__name__}: {why})")


def check_session(s: Session) -> None:
    if not s.restless and (not s.steps or len({v for _, v in s.steps}) < 2 or s.steps[-1][1] <= s.steps[0][1]):
        s.problems.append("step counter did not advance")
    if s.restless:  # τ moved by the student: what is shown must follow the session's own URL
        s.requested = {**s.requested, "tau": s.url_params.get("tau", s.requested.get("tau", "0.05"))}
    if s.last_state.get("exceptions"):
        s.problems.append(f"{s.last_state['exceptions']} exception(s) shown")
    if s.page_errors:
        s.problems.append(f"page errors: {s.page_errors[:2]}")
    title = s.last_state.get("title") or ""
    for part in expected_title_parts(s.requested):
        if part not in title:
            s.problems.append(f"title {title!r} lacks {part!r}")
    if s.last_state.get("dataset") != s.requested["dataset"]:
        s.problems.append(f"dataset shown {s.last_state.get('dataset')!r} != {s.requested['dataset']!r}")
    for key, value in s.requested.items():
        shown = s.url_params.get(key)
        if shown is not None and shown != value and not _same_number(shown, value):
            s.problems.append(f"URL says {key}={shown}, requested {value}")
        if shown is None and key not in ("method",) and not _is_default(key, value):
            s.problems.append(f"URL lost {key}={value}")


def _same_number(a: str, b: str) -> bool:
    try:
        return float(a) == float(b)
    except ValueError:
        return False


def _is_default(key: str, value: str) -> bool:
    from drift_core.config import ExperimentConfig

    default = ExperimentConfig().to_flat()[key]
    return str(default) == value or _same_number(str(default), value)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=120.0, help="how long every session plays")
    parser.add_argument(
        "--after-close", type=float, default=45.0, help="seconds of memory samples after the tabs close"
    )
    parser.add_argument("--port", type=int, default=8631)
    parser.add_argument("--url", default=None, help="use a running server (memory is then not sampled unless --pid)")
    parser.add_argument("--pid", type=int, default=None, help="server process id when --url is given")
    parser.add_argument("--sample-every", type=float, default=2.0, help="seconds between samples")
    parser.add_argument("--screenshots", type=Path, default=None, help="folder for one screenshot per session")
    parser.add_argument("--log", type=Path, default=ROOT / "test-artifacts" / "load-test-server.log")
    args = parser.parse_args()
    if not 1 <= args.sessions <= len(CONFIGS):
        raise SystemExit(f"--sessions must be between 1 and {len(CONFIGS)}")
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        raise SystemExit("Debian's chromium is not installed: apt-get install -y chromium fonts-liberation")
    from playwright.sync_api import sync_playwright

    args.log.parent.mkdir(parents=True, exist_ok=True)
    proc = None
    serving = contextlib.ExitStack()
    if args.url:
        url, pid = args.url.rstrip("/"), args.pid
    else:
        # a closed tab's session is dropped soon (TTL 5 s), so the memory it frees can be seen
        server = serving.enter_context(
            headless_server(
                "--server.disconnectedSessionTTL", "5", port=args.port, log_path=args.log, health_timeout_s=180
            )
        )
        proc, url, pid = server.process, server.url, server.process.pid
    rss: list[tuple[float, float]] = []
    sessions = [Session(i, CONFIGS[i], restless=i % RESTLESS_EVERY == RESTLESS_EVERY - 1) for i in range(args.sessions)]
    t0 = time.time()
    stop_sampling = threading.Event()

    def sample_memory() -> None:  # its own thread: page polling under load must not thin the samples
        while not stop_sampling.wait(1.0):
            try:
                rss.append((time.time() - t0, rss_mb(pid)))
            except (OSError, RuntimeError):
                return

    sampler = threading.Thread(target=sample_memory, daemon=True)
    live_log_chars = None
    closed_at = float("inf")
    engine_mb = None
    try:
        if pid:
            rss.append((0.0, rss_mb(pid)))
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
            # one visitor first, as on a real server: the Playground imports torch, the engine and the
            # figures, which stay imported for the server's life; then the tab closes and is dropped
            warm_up = browser.new_context()
            first = warm_up.new_page()
            first.goto(f"{url}/playground", wait_until="domcontentloaded")
            first.get_by_role("button", name=re.compile("Play")).first.wait_for(timeout=180_000)
            warm_up.close()
            if pid:
                time.sleep(WARM_UP_DROP_S)
                engine_mb = rss_mb(pid)
            for s in sessions:  # one browser context (= one Streamlit session) each
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                s.page = context.new_page()
                s.page.on("pageerror", lambda err, s=s: s.page_errors.append(str(err)[:200]))
                s.page.goto(f"{url}/playground?{urllib.parse.urlencode(s.requested)}", wait_until="domcontentloaded")
            for s in sessions:
                s.page.get_by_role("button", name=re.compile("Play")).first.wait_for(timeout=180_000)
            if pid:
                rss.append((time.time() - t0, rss_mb(pid)))
            for s in sessions:
                s.page.get_by_role("button", name=re.compile("Play")).first.click()
            play_start = time.time()
            if pid:
                sampler.start()
            print(f"{len(sessions)} sessions playing on {url} for {args.seconds:.0f} s ...", flush=True)
            round_index = 0
            while time.time() - play_start < args.seconds:
                round_index += 1
                for s in sessions:
                    if s.restless and round_index % 2 == 0:
                        restless(s, round_index)
                    state = s.page.evaluate(READ_STATE)
                    s.last_state = state
                    if state.get("step") is not None:
                        s.steps.append((time.time() - play_start, int(state["step"].replace(",", ""))))
                time.sleep(args.sample_every)
            play_s = time.time() - play_start
            stop_sampling.set()
            for s in sessions:
                s.last_state = s.page.evaluate(READ_STATE)
                if s.last_state.get("step") is not None:
                    s.steps.append((play_s, int(s.last_state["step"].replace(",", ""))))
                s.url_params = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(s.page.url).query))
                check_session(s)
            for s in sessions:  # stop the animations before taking pictures (less load, stable frames)
                try:
                    s.page.get_by_role("button", name=re.compile("Pause")).first.click(timeout=20_000)
                except Exception as err:  # noqa: BLE001 - a picture is a bonus, not a check
                    print(f"session {s.index}: could not press Pause ({type(err).__name__})")
            if args.screenshots:
                args.screenshots.mkdir(parents=True, exist_ok=True)
                for s in sessions:
                    try:
                        s.page.screenshot(path=str(args.screenshots / f"load_session_{s.index}.png"), timeout=60_000)
                    except Exception as err:  # noqa: BLE001
                        print(f"session {s.index}: no screenshot ({type(err).__name__})")
            # what the server logged while the sessions lived; disconnect/shutdown noise comes after
            live_log_chars = len(args.log.read_text(errors="replace")) if proc is not None and args.log.exists() else 0
            browser.close()
        closed_at = time.time() - t0
        if pid:
            while time.time() - t0 < closed_at + args.after_close:
                rss.append((time.time() - t0, rss_mb(pid)))
                time.sleep(1.0)
    finally:
        stop_sampling.set()
        serving.close()  # stops the server this test started
    log_text = args.log.read_text(errors="replace") if proc is not None and args.log.exists() else ""
    if live_log_chars is None:  # the run stopped before the sessions were closed: count everything
        live_log_chars = len(log_text)
    tracebacks = log_text[:live_log_chars].count("Traceback")
    closing = log_text[live_log_chars:]
    closing_tracebacks = closing.count("Traceback")

    print(
        f"\nLoad test: {len(sessions)} sessions x {args.seconds:.0f} s on one server "
        f"({platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"load average at the end {os.getloadavg()[0]:.1f})"
    )
    print(
        "session | requested configuration | steps shown (start -> end) | steps/s | configuration shown | restless actions | result"
    )
    print("--- | --- | --- | --- | --- | --- | ---")
    failed = False
    for s in sessions:
        first = s.steps[0][1] if s.steps else None
        last = s.steps[-1][1] if s.steps else None
        span = (s.steps[-1][0] - s.steps[0][0]) if len(s.steps) > 1 else 0
        rate = (last - first) / span if span > 0 and first is not None else 0.0
        shown = f"{s.last_state.get('dataset')} / {s.last_state.get('title')}"
        result = "ok" if not s.problems else "FAIL: " + "; ".join(s.problems)
        failed |= bool(s.problems)
        print(
            f"{s.index} | {s.label()} | {first} -> {last} | {rate:.1f} | {shown} | {s.actions if s.restless else '–'} | {result}"
        )
    if tracebacks:
        failed = True
        print(f"\nFAIL: {tracebacks} Python traceback(s) in the server log {args.log} while the sessions lived")
    if closing_tracebacks:
        last = [line for line in closing.splitlines() if line.strip()][-3:]
        print(
            f"\nnote: {closing_tracebacks} traceback(s) after the browser closed every session at once "
            f"(server-side disconnect handling, not counted): {' / '.join(line.strip() for line in last)}"
        )
    if rss:
        playing = [(t, v) for t, v in rss if t <= closed_at]
        values = [v for _, v in playing]
        after = [v for t, v in rss if t > closed_at]
        half = [v for t, v in playing if t >= playing[-1][0] / 2]
        growth = max(half) - min(half) if half else 0.0
        print("\nserver memory (VmRSS, MB) | value")
        print("--- | ---")
        print(f"before sessions | {values[0]:.0f}")
        if engine_mb is not None:
            print(f"engine loaded (one Playground visit, closed) | {engine_mb:.0f}")
        print(f"sessions loaded | {values[1]:.0f}" if len(values) > 1 else "")
        print(f"peak | {max(values):.0f}")
        print(f"end | {values[-1]:.0f}")
        print(f"range over the second half of the run | {growth:.0f} ({growth / max(values) * 100:.1f} % of peak)")
        print(f"samples | {len(values)}")
        bounded = growth <= 0.15 * max(values)
        print(f"memory bounded (second-half range <= 15 % of peak): {'yes' if bounded else 'NO'}")
        failed |= not bounded
        if after:
            freed = max(values) - min(after)
            print(
                f"lowest in the {args.after_close:.0f} s after the tabs closed | {min(after):.0f} "
                f"({freed:.0f} below the peak)"
            )
            floor = engine_mb if engine_mb is not None else values[0]
            fell_back = freed >= 0.5 * (max(values) - floor)
            print(
                f"memory fell back after the tabs closed (by >= 50 % of what the sessions added): "
                f"{'yes' if fell_back else 'NO'}"
            )
            failed |= not fell_back
    print("\nRESULT:", "FAIL" if failed else "PASS")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
