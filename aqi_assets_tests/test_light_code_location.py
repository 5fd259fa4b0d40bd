"""The code location imports only what the definitions need: heavy libraries load where they are used."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from bench.bench_import import HEAVY_MODULES


def _modules_after(statement: str) -> list[str]:
    probe = f"import json, sys; {statement}; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=os.environ.copy(),
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _heavy(modules: list[str]) -> list[str]:
    return sorted({m.split(".")[0] for m in modules if m.split(".")[0] in HEAVY_MODULES})


def test_loading_the_definitions_imports_no_heavy_library():
    assert _heavy(_modules_after("import aqi_assets.definitions")) == []


def test_the_probe_sees_a_heavy_library_when_one_is_imported():
    # The check above would pass vacuously if the probe could not see imports; here it must.
    assert _heavy(_modules_after("import aqi_assets.definitions; import aqi_assets.core.plots as p; "
                                 "p.plt.figure")) == ["matplotlib"]


def test_the_tracking_resource_schema_matches_dagster_mlflow():
    from dagster_mlflow.resources import CONFIG_SCHEMA

    from aqi_assets.defs.resources import _TRACKING_SCHEMA

    assert set(_TRACKING_SCHEMA) == set(CONFIG_SCHEMA)
    for key, field in CONFIG_SCHEMA.items():
        if key != "experiment_name":  # ours is optional (it falls back to $AQI_MLFLOW_EXPERIMENT)
            assert _TRACKING_SCHEMA[key].is_required == field.is_required, key
            assert _TRACKING_SCHEMA[key].default_provided == field.default_provided, key
    assert not _TRACKING_SCHEMA["experiment_name"].is_required
