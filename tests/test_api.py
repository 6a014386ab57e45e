"""The package's public API (drift_core/__init__.py): every name in ``__all__`` exists, drift_core
imports no UI library and nothing of the layers above it (drift_views, ui), and drift_views (figures and
words) imports no Streamlit and no ui."""

from __future__ import annotations

import ast
import subprocess
import sys

import drift_core
from tests.conftest import ROOT


def test_all_names_exist():
    for name in drift_core.__all__:
        assert hasattr(drift_core, name), name


def loaded_by(package: str) -> set[str]:
    """The top-level modules a fresh interpreter holds after importing every module of ``package``."""
    code = (
        f"import sys, pkgutil, importlib, {package}; "
        f"[importlib.import_module(m.name) for m in pkgutil.walk_packages({package}.__path__, '{package}.') "
        "if not m.name.endswith('__main__')]; "
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


def test_drift_core_imports_no_ui_libraries():
    assert not loaded_by("drift_core") & {"streamlit", "plotly", "altair", "drift_views", "ui"}


def test_drift_views_imports_no_streamlit():
    assert not loaded_by("drift_views") & {"streamlit", "ui"}


def test_the_app_and_its_views_do_not_import_the_command_line():
    """The command line is a front end like the app: what both need lives in the engine, so neither
    imports the other (``drift-lab app`` only starts Streamlit, by path)."""
    offenders = []
    for path in [*ROOT.glob("ui/*.py"), *ROOT.glob("pages/*.py"), *ROOT.glob("drift_views/*.py"), ROOT / "app.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.startswith("drift_core.cli")]
    assert not offenders, offenders


def test_only_ui_session_touches_streamlits_session_state():
    """One module keeps the browser session's state (the one key ``lab``) and binds widgets to it;
    pages and the other ``ui`` modules go through it, so no page invents a key of its own."""
    offenders = []
    for path in [*ROOT.glob("ui/*.py"), *ROOT.glob("pages/*.py"), ROOT / "app.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "session_state" and path.name != "session.py":
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders
