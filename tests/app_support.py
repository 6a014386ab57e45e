"""Helpers for the AppTests of the pages: open a page through app.py's navigation, drive ticks with
``at.run()`` (``run_every`` fragments do not tick under AppTest), and read what the page shows."""

from __future__ import annotations

import json

from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT
from ui.session import KEY, LabSession

SMALL_URL = {"batch_size": "64", "width": "32", "depth": "2", "steps_per_frame": "2"}
"""A small network and batch, so a tick trains in milliseconds."""


def open_page(page: str | None, query: dict | None = None) -> AppTest:
    """A fresh session of the app with ``query`` in the URL, switched to ``pages/{page}.py``."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params.update(query or {})
    at.run()
    assert not at.exception, at.exception
    if page:
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, at.exception
    return at


def lab_of(at: AppTest) -> LabSession:
    """The session's state object (what the pages keep between runs)."""
    return at.session_state[KEY]


def tick(at: AppTest, n: int = 1) -> None:
    for _ in range(n):
        at.run()
        assert not at.exception, at.exception


def step_counter(at: AppTest) -> int:
    values = [m.value for m in at.metric if m.label == "Step"]
    assert values, "no 'Step' metric on the page"
    return int(values[0])


def texts(elements) -> str:
    return " | ".join(str(e.value) for e in elements)


def figure_specs(at: AppTest) -> list[dict]:
    """The Plotly figures on the page: the live views (ui.live_plot) first, then st.plotly_chart's."""
    live = [
        json.loads(json.loads(el.proto.json)["figure"])
        for el in at.get("bidi_component")
        if el.proto.component_name == "drift_lab.live_plot"
    ]
    return live + [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def titles(at: AppTest) -> list[str]:
    return [spec["layout"].get("title", {}).get("text", "") for spec in figure_specs(at)]


def query_value(at: AppTest, name: str):
    value = at.query_params.get(name)
    return value[0] if isinstance(value, list) else value


def upload(at: AppTest, key: str, name: str, content: bytes) -> AppTest:
    at.file_uploader(key=key).set_value((name, content, "application/octet-stream")).run()
    assert not at.exception, at.exception
    return at
