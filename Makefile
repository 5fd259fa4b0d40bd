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

.PHONY: install test demo dev screenshots bench bench-feature-stats bench-models bench-policies bench-policies-extras bench-drift bench-sensor-load bench-triggers bench-import bench-retrain bench-preset-window bench-peer-offsets validate clean

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

# The instance's storage is created before the webserver and daemon start side by side; the MLflow
# UI serves the same store on MLFLOW_UI_PORT (the links on the model assets point there).
MLFLOW_UI_PORT ?= 5000
dev: install
	$(BIN)/python -c "import dagster as dg; dg.DagsterInstance.get().get_runs(limit=1)"
	mkdir -p $(DAGSTER_HOME)/mlflow
	$(BIN)/mlflow server --backend-store-uri "$${MLFLOW_TRACKING_URI:-sqlite:///$(DAGSTER_HOME)/mlflow/mlflow.db}" \
	  --host 127.0.0.1 --port $(MLFLOW_UI_PORT) --workers 1 > $(DAGSTER_HOME)/mlflow-ui.log 2>&1 & mlflow=$$!; \
	  trap 'kill $$mlflow 2>/dev/null' EXIT INT TERM; \
	  echo "MLflow UI: http://127.0.0.1:$(MLFLOW_UI_PORT) (log: $(DAGSTER_HOME)/mlflow-ui.log)"; \
	  AQI_MLFLOW_UI_URL=$${AQI_MLFLOW_UI_URL:-http://127.0.0.1:$(MLFLOW_UI_PORT)} $(BIN)/dagster dev -w workspace.yaml

# docs/img/*.png from the instance `make demo` filled (Debian's chromium; see scripts/screenshots.sh).
screenshots: install
	bash scripts/screenshots.sh

bench: bench-feature-stats bench-models bench-policies bench-policies-extras bench-drift bench-sensor-load bench-triggers

bench-sensor-load: install
	$(BIN)/python -m bench.bench_sensor_load

bench-feature-stats: install
	$(BIN)/python -m bench.bench_feature_stats

bench-models: install
	$(BIN)/python -m bench.bench_models $(BENCH_ARGS)

bench-import: install
	$(BIN)/python -m bench.bench_import

bench-retrain: install
	$(BIN)/python -m bench.bench_retrain $(BENCH_ARGS)

# How steady a station's offset from its peers is on Beijing, and how big the benchmark's faults are in it.
bench-peer-offsets: install
	$(BIN)/python -m bench.bench_peer_offsets

# The shipped presets against the previous ones on bench-retrain's window: bench/results/preset_window.json.
bench-preset-window: install
	$(BIN)/python -m bench.bench_preset_window $(BENCH_ARGS)

bench-policies: install
	$(BIN)/python -m bench.bench_policies

# The warm-start variants and other rule sets, replayed apart: bench/results/policies_extras.{json,md,png}.
bench-policies-extras: install
	$(BIN)/python -m bench.bench_policies --extras

# Trigger quality on the real Beijing data (clean replay + injected faults): bench/results/triggers.{json,md}.
bench-triggers: install
	$(BIN)/python -m bench.bench_triggers $(BENCH_ARGS)

bench-drift: install
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench.bench_drift

clean:
	rm -rf $(VENV) $(DAGSTER_HOME) *.egg-info
