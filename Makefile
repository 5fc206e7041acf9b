# `make run` and `make test` work from a fresh clone: the first run installs what is missing.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
BOOTSTRAP_PYTHON := $(shell command -v python3.11 || command -v python3)
DEBIAN_PACKAGES := graphviz chromium

.PHONY: run test lint stop bootstrap system-packages

run: bootstrap
	$(PY) manage.py migrate --noinput
	$(PY) manage.py ensure_admin
	$(PY) manage.py runall

test: bootstrap lint
	$(PY) -m pytest

# Settings in pyproject.toml. Any finding fails `make test` (and so CI) before a test runs.
lint: bootstrap
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

# Stops the embedded PostgreSQL and Redis of this checkout (they outlive `make run` on purpose).
stop:
	$(PY) -m config.embedded stop

bootstrap: system-packages $(VENV)/.installed

# Checked on every run, not stamped: a kept work tree can land on a machine without them.
system-packages:
	@if ! command -v dot >/dev/null || [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			export DEBIAN_FRONTEND=noninteractive; \
			apt-get update -q && apt-get install -y -q $(DEBIAN_PACKAGES); \
		else \
			echo "warning: install the Debian packages $(DEBIAN_PACKAGES) (graphviz's dot and /usr/bin/chromium)" >&2; \
		fi; \
	fi

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(BOOTSTRAP_PYTHON) -m venv $(VENV)
	$(PY) -m pip install -qq --disable-pip-version-check -r requirements.txt
	touch $@

# Benchmarks (not part of `make test`): see docs/benchmarks.md. Matplotlib only for the plot.
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): bench/requirements.txt
	$(PY) -m pip install -qq --disable-pip-version-check -r bench/requirements.txt
	touch $@

.PHONY: bench bench-peers

bench: bootstrap $(BENCH_STAMP)
	$(PY) -m bench.run
	$(PY) -m bench.plot

# Apache Airflow 3.3.2 (by `dags test`, and as a deployment: api-server, dag-processor and scheduler
# with LocalExecutor on the embedded PostgreSQL), Airflow 2.10.5 and Prefect 3 in their own
# virtualenvs under var/peers/ (installed once); the same map at N = 100 and 1,000 in each, ours
# measured between them, and the ratios (bench/results/peers.json; logs in var/peers/logs/).
# About an hour on a busy 2-CPU machine; `python -m bench.peers --help` to measure part of it.
bench-peers: bootstrap
	$(PY) -m bench.peers

# Differential parity with Apache Airflow (tests/parity/README.md). `make parity` needs only our venv:
# it compares our `dags test` with the committed fixtures. `make parity-record` installs Airflow
# into var/parity-airflow (without constraints: their URL is not reachable from every machine)
# and records the fixtures again.
AIRFLOW_VERSION := 3.3.2
PARITY_VENV := var/parity-airflow
PARITY_STAMP := $(PARITY_VENV)/.installed-$(AIRFLOW_VERSION)

.PHONY: parity parity-record

parity: bootstrap
	$(PY) -m pytest tests/parity

$(PARITY_STAMP):
	test -x $(PARITY_VENV)/bin/python || $(BOOTSTRAP_PYTHON) -m venv $(PARITY_VENV)
	$(PARITY_VENV)/bin/python -m pip install -qq --disable-pip-version-check apache-airflow==$(AIRFLOW_VERSION)
	touch $@

parity-record: $(PARITY_STAMP)
	$(PARITY_VENV)/bin/python tests/parity/record.py $(PARITY_DAGS)
