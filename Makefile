# Everything a fresh machine needs is installed here; nothing is assumed from outside.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# No telemetry from Prefect's local server: these machines have no internet.
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
# pagereel's warnings in the Prefect UI: its loggers join the run logs (flows/logs.py does the same).
export PREFECT_LOGGING_EXTRA_LOGGERS := pagereel
export PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW := ignore

.PHONY: setup fonts demo test soak lint clean serve tune bench bench-quick

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

# Chinese, Japanese and Korean text needs a system font (no Python package carries one): Debian's
# fonts-noto-cjk. Installed only where apt-get runs as root and the package can be fetched; elsewhere
# this says so and goes on (the video's CJK text is then left out, with one warning).
fonts:
	@if fc-list :charset=4e00 2>/dev/null | grep -q .; then echo "a CJK font is installed"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get install -y -q fonts-noto-cjk >/dev/null 2>&1 || \
		 (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q fonts-noto-cjk >/dev/null 2>&1)) \
		&& echo "installed fonts-noto-cjk" || echo "fonts-noto-cjk could not be installed (offline?): skipped"; \
	else echo "not root or no apt-get: install fonts-noto-cjk to draw CJK text; skipped"; fi

demo: setup
	$(PY) -m flows.video_flow examples/article.html --workflow-id demo --avatar ada

# Three processes: the suite mostly waits on Prefect servers, encoders and child processes, so a 2-core
# machine runs three at once in about half the time. Each process has its own Prefect home, API server
# and Redis; tests take free ports. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 3
test: setup
	$(PY) -m pytest -m "not slow" -n $(TEST_WORKERS) --dist worksteal

# Long runs that prove the system holds up (30 videos, a Redis restart): minutes, not part of `make test`.
soak: setup
	$(PY) -m pytest -m slow -s

# The deployments of prefect.yaml from this process (needs PREFECT_API_URL); Ctrl-C stops it.
serve: setup
	$(PY) deployments/serve.py

tune: setup
	$(PY) -m flows.tune_flow --trials 8

# MoviePy 2.2 pins Pillow below 12, so the benchmark's MoviePy contender gets an environment of its
# own; benchmarks/render.py runs it there in a child process. Everything else runs in $(VENV).
BENCH_VENV ?= .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

$(BENCH_STAMP): pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet -e '.[bench]'
	touch $(BENCH_STAMP)

bench: setup $(BENCH_STAMP)
	$(PY) benchmarks/kernels.py
	$(PY) benchmarks/narration.py
	$(PY) benchmarks/kernels_frame.py
	$(PY) benchmarks/quality.py
	$(PY) benchmarks/render.py
	$(PY) benchmarks/assemble.py
	$(PY) benchmarks/e2e.py
	$(PY) benchmarks/cores.py
	$(PY) benchmarks/scale.py $(if $(BENCH_DATABASE),--database $(BENCH_DATABASE))
	$(PY) benchmarks/cache.py
	$(PY) benchmarks/layouts.py
	$(PY) benchmarks/layouts.py --speed

# A smoke run of the same scripts, a few minutes in all.
bench-quick: setup $(BENCH_STAMP)
	$(PY) benchmarks/kernels.py --repeat 2
	$(PY) benchmarks/kernels_frame.py --repeat 2
	$(PY) benchmarks/quality.py --repeat 2
	$(PY) benchmarks/render.py --quick --rounds 1
	$(PY) benchmarks/assemble.py --rounds 1 --resolution 180
	$(PY) benchmarks/e2e.py --quick
	$(PY) benchmarks/cores.py --rounds 1 --renders 1
	$(PY) benchmarks/scale.py --quick
	$(PY) benchmarks/cache.py --duration 20
	$(PY) benchmarks/layouts.py tests/pages

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf out .pagereel .pytest_cache
