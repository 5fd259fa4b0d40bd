# Every target creates .venv and installs the project when needed: `make demo` and `make test`
# are all the set-up a fresh machine needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
# The embedded simulated city from 2024-04-01, with a sensor recalibration at one station from
# 2024-05-13 (day 15 of the demo's replay). Set AQI_SOURCE for another source (prsa:<dir>, csv:<dir>).
export AQI_SOURCE ?= simulated:start=2024-04-01,scenario=sensor_recalibration@2024-05-13@S0005
PYTEST_ARGS ?=

.PHONY: install test demo dev bench bench-feature-stats bench-models bench-policies bench-drift bench-sensor-load bench-import bench-retrain validate clean

$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) $(DAGSTER_HOME)/dagster.yaml

# The shipped instance config (run monitoring, pools, run queue) lives in deploy/.
$(DAGSTER_HOME)/dagster.yaml: deploy/dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp deploy/dagster.yaml $@

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

validate: install
	$(BIN)/dagster definitions validate -w workspace.yaml

demo: install
	$(BIN)/aqi-retrain demo $(DEMO_ARGS)

# The instance's storage is created before the webserver and daemon start side by side.
dev: install
	$(BIN)/python -c "import dagster as dg; dg.DagsterInstance.get().get_runs(limit=1)"
	$(BIN)/dagster dev -w workspace.yaml

bench: bench-feature-stats bench-models bench-policies bench-drift bench-sensor-load

bench-sensor-load: install
	$(BIN)/python -m bench.bench_sensor_load

bench-feature-stats: install
	$(BIN)/python -m bench.bench_feature_stats

bench-models: install
	$(BIN)/python -m bench.bench_models

bench-import: install
	$(BIN)/python -m bench.bench_import

bench-retrain: install
	$(BIN)/python -m bench.bench_retrain

bench-policies: install
	$(BIN)/python -m bench.bench_policies

bench-drift: install
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench.bench_drift

clean:
	rm -rf $(VENV) $(DAGSTER_HOME) *.egg-info
