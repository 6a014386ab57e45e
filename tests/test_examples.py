"""examples/quickstart.ipynb: kept without outputs in git, and it runs headless (nbclient, a real
Jupyter kernel on this interpreter) from start to end without an error, showing what its cells promise."""

from __future__ import annotations

import json

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import ROOT

NOTEBOOK = ROOT / "examples" / "quickstart.ipynb"


def test_quickstart_notebook_is_stored_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert "widgets" not in notebook.metadata and all("collapsed" not in c.metadata for c in code)
    assert NOTEBOOK.read_text().count('"outputs": []') == len(code)  # nothing hides in the raw JSON either


@pytest.mark.slow
def test_quickstart_notebook_runs_headless(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIFT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the kernel imports this checkout's drift_core
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "V = V+ - V-: True" in text and "K = 0 is the baseline: True" in text
    assert "exit status 0" in text and "loaded at step 40" in text
    assert "mean of 3 seeds" in text
    figures = [o for o in outputs if "application/vnd.plotly.v1+json" in o.get("data", {})]
    # the field, the metric curves, the app's two particle pictures and a curve (drift_views), the
    # loaded checkpoint's samples
    assert len(figures) == 6
    plotted = [figure["data"]["application/vnd.plotly.v1+json"] for figure in figures]
    assert sorted(trace["name"] for trace in plotted[1]["data"]) == ["baseline", "lookahead"]
    pictures = [plotted[2]["layout"]["title"]["text"], plotted[3]["layout"]["title"]["text"]]
    assert pictures[0].startswith("baseline · step 80") and pictures[1].startswith("lookahead K=1 · step 80")
    assert "theme:" not in json.dumps(plotted[2:5])  # the theme's colours are filled in
    assert sorted(trace["name"] for trace in plotted[4]["data"]) == ["baseline", "lookahead"]
