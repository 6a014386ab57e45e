"""Browser tests of the app as a teacher uses it (issue #17): the picture is fully visible without
scrolling on a 1366×768 laptop and at 1920×1080 (sidebar open), Space plays and pauses, presenter mode
enlarges the picture; screenshots of each page at both sizes, in presenter mode and in the dark theme
are saved under test-artifacts/ to be looked at."""

from __future__ import annotations

import time

import pytest

from tests.test_e2e_browser import (  # noqa: F401  (fixtures)
    CHROMIUM_ARGS,
    _no_errors,
    _open,
    _step,
    _wait_for_step_above,
    _wait_idle,
    app_url,
    browser,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SIZES = {"laptop": (1366, 768), "full-hd": (1920, 1080)}
VIEW = 'div.drift-live-plot[data-view^="view_"]'


def _visible_box(page, selector: str) -> dict:
    """The bounding box of the first element matching ``selector``, after its first draw."""
    page.wait_for_function(
        f"() => {{ const d = document.querySelector('{selector}'); return !!(d && d._fullData); }}", timeout=60_000
    )
    time.sleep(0.5)
    return page.locator(selector).first.bounding_box()


def _fully_visible(box: dict, width: int, height: int) -> bool:
    return box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= width and box["y"] + box["height"] <= height


PICTURES = {
    "playground": VIEW,
    "compare": VIEW,
    "inspector": 'div.drift-live-plot[data-view="view_stage"]',
    "cifar10": 'div.drift-live-plot[data-view^="img_features_"]',
}
"""The particle pictures of each page (the Inspector's stage picture; the Images page's feature pictures)."""


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("name", list(PICTURES))
def test_the_picture_is_fully_visible_without_scrolling(browser, app_url, artifacts_dir, name, size):
    width, height = SIZES[size]
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    try:
        if name == "cifar10":  # no metric cards on the Images page
            page.goto(f"{app_url}/{name}")
            _wait_idle(page)
        else:
            _open(page, f"{app_url}/{name}")
        _visible_box(page, PICTURES[name])
        pictures = page.locator(PICTURES[name])
        boxes = [pictures.nth(i).bounding_box() for i in range(pictures.count())]
        assert boxes, "no particle view on the page"
        page.screenshot(path=str(artifacts_dir / f"teach-{name}-{size}.png"))
        for box in boxes:
            assert _fully_visible(box, width, height), f"{name} at {width}x{height}: the picture is at {box}"
        _no_errors(page)
    finally:
        context.close()


def test_space_plays_and_pauses_and_presenter_mode_enlarges_the_picture(browser, app_url, artifacts_dir):
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    page = context.new_page()
    try:
        _open(page, f"{app_url}/playground?steps=100000")
        normal = _visible_box(page, VIEW)
        start = _step(page)
        page.mouse.click(1900, 1000)  # focus on the page (an empty spot), not on a text field
        page.keyboard.press("Space")
        _wait_for_step_above(page, start + 2)
        page.locator(".st-key-play button", has_text="Pause").first.wait_for(timeout=30_000)
        page.keyboard.press("Space")
        page.locator(".st-key-play button", has_text="Play").first.wait_for(timeout=30_000)
        _wait_idle(page)
        paused = _step(page)
        time.sleep(1.5)
        assert _step(page) == paused, "Space did not pause the run"
        page.keyboard.press("ArrowRight")  # → takes one step
        deadline = time.time() + 30
        while _step(page) != paused + 1 and time.time() < deadline:
            time.sleep(0.25)
        assert _step(page) == paused + 1, "→ did not take one step"
        _open(page, f"{app_url}/playground?presenter=1")
        big = _visible_box(page, VIEW)
        side = lambda box: min(box["width"], box["height"])  # noqa: E731  (the plot area is square)
        assert side(big) > 1.3 * side(normal), (normal, big)
        assert _fully_visible(big, 1920, 1080)
        page.screenshot(path=str(artifacts_dir / "teach-playground-presenter.png"))
        _open(page, f"{app_url}/compare?presenter=1&fairness=true")
        _visible_box(page, VIEW)
        page.screenshot(path=str(artifacts_dir / "teach-compare-presenter.png"))
        _no_errors(page)
    finally:
        context.close()


def test_every_page_in_the_dark_theme(browser, app_url, artifacts_dir):
    context = browser.new_context(viewport={"width": 1366, "height": 768}, color_scheme="dark")
    page = context.new_page()
    try:
        for name in ("playground", "compare", "inspector"):
            _open(page, f"{app_url}/{name}")
            _visible_box(page, ".js-plotly-plot")
            page.screenshot(path=str(artifacts_dir / f"teach-{name}-dark.png"))
            _no_errors(page)
    finally:
        context.close()


def test_predict_then_reveal_by_clicking_the_picture(browser, app_url, artifacts_dir):
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    try:
        _open(page, f"{app_url}/playground?batch_size=128&width=64")
        page.locator(".st-key-predict button").first.click()
        page.get_by_text("click where the ringed particle will be").wait_for(timeout=60_000)
        box = _visible_box(page, VIEW)
        page.mouse.click(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.4)  # a guess on the plot
        page.get_by_text("Your guess is marked").wait_for(timeout=60_000)
        page.locator(".st-key-predict_reveal button").first.click()
        page.get_by_text("It moved").wait_for(timeout=60_000)
        assert "your guess was" in page.get_by_text("It moved").first.inner_text()
        time.sleep(1.0)
        page.screenshot(path=str(artifacts_dir / "teach-predict.png"))
        _no_errors(page)
    finally:
        context.close()
