# mlops_nb: every target installs what it needs into .venv first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)
# Keep tools from phoning home (DVC analytics, Jupyter news) and off the network.
export DVC_NO_ANALYTICS := 1
export MPLBACKEND := Agg
export PYTHONHASHSEED := 0

# pytest-xdist processes for `make test` (a test file stays in one process: its module fixtures are shared)
TEST_WORKERS ?= 2

.PHONY: help install hooks run test test-fast lint check-sync lab docs docs-serve readme chromium postgresql plots-template bench experiments clean promtool wrk serve

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev,docs,remotes]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (mlops_nb)" >/dev/null
	touch $@

install: $(VENV)/.installed  ## create .venv and install the project with its dev tools

hooks: install  ## clean notebooks on save (JupyterLab) and before each commit (git)
	@if [ -d .git ]; then \
	  $(BIN)/nbdev-install-hooks >/dev/null; \
	  cp tools/pre-commit .git/hooks/pre-commit; chmod +x .git/hooks/pre-commit; \
	fi

run: install hooks plots-template  ## set up, check params.yaml, run the whole pipeline (dvc repro), print the test-set metrics
	$(BIN)/mlops-nb check
	$(BIN)/dvc repro
	$(BIN)/mlops-nb metrics

lint: install  ## ruff: lint the library, notebooks, tests and bench; check the notebooks, tests and bench are formatted
	$(BIN)/ruff check mlops_nb nbs tests bench tools
	$(BIN)/ruff format --check nbs tests bench tools

check-sync: install  ## the library is in sync with the notebooks, and the notebooks are clean
	$(BIN)/nbdev-export
	$(BIN)/nbdev-clean
	@git diff --exit-code --stat -- mlops_nb nbs || { echo "error: notebooks are not clean or mlops_nb/ is out of sync: run 'make hooks', 'nbdev-export' and 'nbdev-clean', then commit"; exit 1; }

test: install hooks check-sync lint plots-template  ## set up and run every test: notebook tests (nbdev-test) and pytest
	$(BIN)/nbdev-test nbs/api --n-workers 2 --flags slow
	$(BIN)/mlops-nb docs readme --check
	$(MAKE) --no-print-directory chromium
	$(MAKE) --no-print-directory postgresql
	$(MAKE) --no-print-directory promtool
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile tests

test-fast: install promtool  ## the tests that do not run the whole pipeline
	$(BIN)/nbdev-test nbs/api --n-workers 2
	$(BIN)/python -m pytest -q -m "not slow" tests

$(VENV)/.lab-installed: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[dev,docs,remotes,lab]"
	touch $@

lab: hooks $(VENV)/.lab-installed  ## open JupyterLab on the project with the project's kernel (more options: LAB_ARGS="...")
	$(BIN)/jupyter lab --notebook-dir=$(CURDIR) $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

docs: install  ## build the docs site into _docs/ (sphinx-build -W); runs the pipeline first when reports/ is stale
	$(BIN)/mlops-nb docs build --pipeline auto

docs-serve: docs  ## build the docs site and serve it on http://127.0.0.1:8000
	$(BIN)/mlops-nb docs serve --port 8000

readme: install  ## regenerate README.md from nbs/index.ipynb
	$(BIN)/mlops-nb docs readme

postgresql:  ## PostgreSQL's server binaries for the shared-study tests (Debian's postgresql), installed when missing
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

# `dvc plots show/diff` offline: Vega, Vega-Lite and Vega-Embed (pinned, from the npm registry) inlined in the page
# template DVC uses (DVC's own page loads them from a CDN and shows blank charts offline).
VEGA_PACKAGES := vega@5.20.2 vega-lite@5.2.0 vega-embed@6.18.2
PLOTS_TEMPLATE := .cache/vega/plots.html

$(PLOTS_TEMPLATE): tools/plots_template.py | $(VENV)/.installed
	@mkdir -p .cache/vega
	cd .cache/vega && npm pack --silent $(VEGA_PACKAGES) >/dev/null
	$(BIN)/python tools/plots_template.py .cache/vega $@

plots-template: $(PLOTS_TEMPLATE)  ## the offline page template of `dvc plots show/diff`, set in .dvc/config.local
	@$(BIN)/dvc config --local plots.html_template ../$(PLOTS_TEMPLATE)

chromium:  ## the headless browser of the docs test (Debian's chromium), installed when missing
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

EXPERIMENTS ?= -S 'tune.sampler=tpe,random' -S 'tune.pruner=median,none'
JOBS ?= 2
experiments: install  ## queue a grid of DVC experiments and run them JOBS at a time: make experiments EXPERIMENTS="-S 'train.seed=1,2'"
	$(BIN)/dvc exp run --queue $(EXPERIMENTS)
	$(BIN)/dvc queue start -j $(JOBS)
	@while $(BIN)/dvc queue status | grep -qE 'Queued|Running'; do sleep 5; done
	$(BIN)/dvc queue status
	$(BIN)/dvc exp show --no-pager
	@! $(BIN)/dvc queue status | grep -q Failed

promtool:  ## Prometheus' promtool (Debian's prometheus package) for the metrics/alert tests, installed when missing
	@command -v promtool >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }

wrk:  ## the HTTP load generator of the serving benchmark (Debian's wrk), installed when missing
	@command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

SERVE_ARGS ?=
serve: install  ## serve the workspace model on http://127.0.0.1:8000 (runs the pipeline first if needed; more: SERVE_ARGS="...")
	$(BIN)/dvc repro
	$(BIN)/mlops-nb serve $(SERVE_ARGS)

bench: install wrk  ## run the benchmarks in bench/ and print their ratios
	$(BIN)/python bench/bench_pipeline.py
	$(BIN)/python bench/bench_serve.py --mlserver
	$(BIN)/python bench/bench_monitor.py

clean:  ## remove the virtualenv and generated run outputs (the DVC cache stays)
	rm -rf $(VENV) _proc .pytest_cache
