# Everything a fresh machine needs is installed here; nothing is assumed from outside.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# No telemetry from Prefect's local server: these machines have no internet.
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.PHONY: setup demo test soak lint clean serve tune

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(PY) -m flows.video_flow examples/article.html --workflow-id demo --avatar ada

test: setup
	$(PY) -m pytest -m "not slow"

# Long runs that prove the system holds up (30 videos, a Redis restart): minutes, not part of `make test`.
soak: setup
	$(PY) -m pytest -m slow -s

# The deployments of prefect.yaml from this process (needs PREFECT_API_URL); Ctrl-C stops it.
serve: setup
	$(PY) deployments/serve.py

tune: setup
	$(PY) -m flows.tune_flow --trials 8

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf out .pagereel .pytest_cache
