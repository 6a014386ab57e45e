"""Drift Lab as an installable package (pyproject.toml): its metadata declares what the code imports and
agrees with requirements.txt, and a fresh virtual environment gets a working ``drift-lab`` command, an
importable ``drift_core`` and the app, run from another directory.

The fresh environments do not download or copy torch: they see this environment's packages through a
``.pth`` file, and the package goes in with ``pip install --no-deps --no-build-isolation --no-index``, built
from a copy of the package's sources (so the build leaves nothing in the checkout).
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import textwrap
import time
import tomllib
import urllib.request
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT
from tests.e2e_support import free_port

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
NAME = canonicalize_name(PROJECT["name"])
PACKAGE_SOURCES = ("pyproject.toml", "README.md", "app.py", ".streamlit", "pages", "ui", "drift_core", "drift_views")
"""What building the package reads (pyproject.toml's packages, package-dir, package-data and readme)."""
FIRST_PARTY = {"drift_core", "drift_views", "ui", "tests", "benchmarks"}


def pinned_requirements() -> dict[str, Requirement]:
    out = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            out[canonicalize_name(req.name)] = req
    return out


def declared_requirements() -> dict[str, tuple[Requirement, str]]:
    """name -> (requirement, "dependencies" or the extra's name), the package itself left out."""
    out = {canonicalize_name(Requirement(r).name): (Requirement(r), "dependencies") for r in PROJECT["dependencies"]}
    for extra, items in PROJECT["optional-dependencies"].items():
        for item in items:
            req = Requirement(item)
            if canonicalize_name(req.name) != NAME:
                out.setdefault(canonicalize_name(req.name), (req, extra))
    return out


def test_every_pin_satisfies_the_package_metadata_and_the_other_way_round():
    pins, declared = pinned_requirements(), declared_requirements()
    build = {canonicalize_name(Requirement(r).name): Requirement(r) for r in PYPROJECT["build-system"]["requires"]}
    for name, pin in pins.items():
        if name in build:  # setuptools: what builds the editable install
            assert str(pin.specifier) == str(build[name].specifier), name
            continue
        assert name in declared, f"{name} is pinned in requirements.txt but not declared in pyproject.toml"
        version = next(iter(pin.specifier)).version
        assert declared[name][0].specifier.contains(version, prereleases=True), (name, version, declared[name])
    missing = sorted(set(declared) - set(pins))
    assert not missing, f"declared in pyproject.toml but not installed by make (requirements.txt): {missing}"
    # the extras refer to themselves by the package's name, and every extra exists
    for extra, items in PROJECT["optional-dependencies"].items():
        for item in items:
            req = Requirement(item)
            if canonicalize_name(req.name) == NAME:
                assert req.extras <= set(PROJECT["optional-dependencies"]), (extra, req)


def imported_modules(paths) -> dict[str, set[str]]:
    """Top-level modules imported (absolutely) by the Python files under ``paths`` -> the files."""
    out: dict[str, set[str]] = {}
    for base in paths:
        for path in [base] if base.is_file() else sorted(base.rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                for name in names:
                    out.setdefault(name.split(".")[0], set()).add(str(path.relative_to(ROOT)))
    return out


def test_the_package_declares_every_library_its_code_imports():
    """Scan the package's code for imports, map each module to the distribution that installed it here,
    and require that distribution in the runtime dependencies (or, for the cluster code, in the
    'cluster' extra)."""
    declared = declared_requirements()
    runtime = {n for n, (_, where) in declared.items() if where == "dependencies"}
    allowed = runtime | {n for n, (_, where) in declared.items() if where == "cluster"}
    owners = packages_distributions()
    third_party = {
        m: files
        for m, files in imported_modules(
            [ROOT / "drift_core", ROOT / "drift_views", ROOT / "ui", ROOT / "pages", ROOT / "app.py"]
        ).items()
        if m not in sys.stdlib_module_names and m not in FIRST_PARTY
    }
    assert {"torch", "numpy", "streamlit"} <= set(third_party)
    for module, files in sorted(third_party.items()):
        distributions = {canonicalize_name(d) for d in owners.get(module, [])}
        assert distributions, f"{module} (imported by {sorted(files)}) is not installed here"
        assert distributions & allowed, f"{module} (from {distributions}, imported by {sorted(files)}) is not declared"
        if module != "distributed":
            assert distributions & runtime, f"{module} must be a runtime dependency, not only an extra"


# ---- fresh environments ----------------------------------------------------------------------------
def shared_site_dirs() -> list[str]:
    """This interpreter's package folders (its site-packages and those it sees through .pth files), not
    the checkout (pytest puts it on sys.path)."""
    return [
        p
        for p in dict.fromkeys(sys.path)
        if p and Path(p).name in ("site-packages", "dist-packages") and Path(p).is_dir()
    ]


def fresh_venv(folder: Path) -> Path:
    """A virtual environment without pip of its own that sees this environment's packages; its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=120)
    python = folder / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    (Path(site) / "_drift_lab_shared_packages.pth").write_text("\n".join(shared_site_dirs()) + "\n")
    return python


def copy_sources(target: Path) -> Path:
    target.mkdir()
    for name in PACKAGE_SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, target / name)
    return target


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def run_in(python: Path, args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (
        f"{args} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


def pip_install(python: Path, *args: str, cwd: Path) -> None:
    # --ignore-installed: never touch the distributions the shared folders hold (pip would see this
    # checkout's editable install there); --no-index: nothing is downloaded
    run_in(
        python,
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--ignore-installed",
            *args,
        ],
        cwd=cwd,
    )


@pytest.mark.slow
def test_pip_install_into_a_fresh_venv_gives_the_command_the_api_and_the_app(tmp_path):
    python = fresh_venv(tmp_path / "venv")
    sources = copy_sources(tmp_path / "src")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    pip_install(python, str(sources), cwd=elsewhere)
    site = Path(
        run_in(
            python, [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], elsewhere
        ).stdout.strip()
    )
    assert not (site / "torch").exists()  # torch is seen through the .pth file, not copied
    command = tmp_path / "venv" / "bin" / "drift-lab"

    # the console command, from another directory
    help_text = run_in(python, [str(command), "--help"], elsewhere).stdout
    assert all(c in help_text for c in ("train", "compare", "sweep", "train-images", "app"))
    assert "--steps" in run_in(python, [str(command), "train", "--help"], elsewhere).stdout

    # the API, from the installed copy (not this checkout), and the declared dependencies
    probe = textwrap.dedent("""
        import importlib.metadata, importlib.util
        from drift_core import drifting_field, lookahead_field
        import drift_core, drift_views
        print(drift_core.__file__)
        print(drift_views.__file__)
        print(importlib.util.find_spec("ui"))
        for requirement in importlib.metadata.requires("drift-lab"):
            print("requires", requirement)
    """)
    lines = run_in(python, [str(python), "-c", probe], elsewhere).stdout.splitlines()
    assert Path(lines[0]).is_relative_to(site) and Path(lines[1]).is_relative_to(site), lines[:2]
    assert lines[2] == "None"  # ui lives next to app.py in drift_lab_app, not as a top-level package
    installed = {Requirement(line.removeprefix("requires ")) for line in lines[3:]}
    for requirement in PROJECT["dependencies"]:
        assert Requirement(requirement) in installed, requirement

    # the app's files sit together in the installed drift_lab_app, as in the checkout
    app = site / "drift_lab_app"
    for pattern in ("pages/*.py", "ui/*.py", "ui/*.js", "ui/*.css"):
        assert {p.relative_to(ROOT) for p in ROOT.glob(pattern)} == {p.relative_to(app) for p in app.glob(pattern)}
    assert (app / "app.py").is_file() and (app / ".streamlit" / "config.toml").read_text() == (
        ROOT / ".streamlit" / "config.toml"
    ).read_text()
    shown = run_in(python, [str(command), "app", "--print-command"], elsewhere).stdout
    assert f"{app / 'app.py'} " in shown and "--server.fileWatcherType none" in shown

    # the installed app runs: its pages import the installed ui (AppTest, with the app's folder on
    # sys.path as `streamlit run` puts it), ...
    apptest = textwrap.dedent("""
        import sys
        from drift_core.cli.app import app_folder
        folder = app_folder()
        sys.path.insert(0, str(folder))
        from streamlit.testing.v1 import AppTest
        at = AppTest.from_file(str(folder / "app.py"), default_timeout=180)
        at.run()
        assert not at.exception, at.exception
        at.switch_page("pages/sweep.py").run()
        assert not at.exception, at.exception
        import ui
        print(ui.__file__)
        print(next(m.value for m in at.markdown if m.value.startswith("### ")))
    """)
    lines = run_in(python, [str(python), "-c", apptest], elsewhere).stdout.splitlines()
    assert Path(lines[-2]).is_relative_to(app) and lines[-1] == "### Sweep"
    # ... and `drift-lab app` serves it from another directory
    port = free_port()
    server = subprocess.Popen(
        [
            str(command),
            "app",
            "--server.headless",
            "true",
            "--server.address",
            "127.0.0.1",
            "--server.port",
            str(port),
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=elsewhere,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline, healthy = time.monotonic() + 120, False
        while time.monotonic() < deadline and server.poll() is None and not healthy:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as answer:
                    healthy = answer.read().decode().strip() == "ok"
            except OSError:
                time.sleep(0.5)
        assert healthy, f"drift-lab app did not serve the app (exit status {server.poll()})"
    finally:
        server.terminate()  # the command became Streamlit itself (exec): this stops the server
        output = server.communicate(timeout=30)[0]
    assert "Traceback" not in output, output[-3000:]


@pytest.mark.slow
def test_editable_install_runs_the_checkout_it_was_installed_from(tmp_path):
    python = fresh_venv(tmp_path / "venv")
    sources = copy_sources(tmp_path / "src")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    pip_install(python, "-e", str(sources), cwd=elsewhere)
    probe = (
        "import drift_core; from drift_core.cli.app import app_folder; print(drift_core.__file__); print(app_folder())"
    )
    module, folder = run_in(python, [str(python), "-c", probe], elsewhere).stdout.split()
    assert Path(module) == sources / "drift_core" / "__init__.py" and Path(folder) == sources
    command = tmp_path / "venv" / "bin" / "drift-lab"
    assert str(sources / "app.py") in run_in(python, [str(command), "app", "--print-command"], elsewhere).stdout
