"""Benchmark: how long the code location takes to import, beside ``import dagster`` alone.

Every run worker and every code-server start imports ``aqi_assets.definitions``. Each
measurement is a fresh interpreter (``python -c``), timed from the parent, alternating the two
imports so both see the same machine load; the figure is the median of ``--repeats`` runs.
Also lists which heavy libraries (MLflow, torch, torch-geometric, scipy, matplotlib, XGBoost)
the definitions pulled in (none is the goal: they are imported where they are used).
Writes ``bench/results/import.json``.

    python -m bench.bench_import             # 7 runs of each
    python -m bench.bench_import --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone

from bench.common import RESULTS_DIR, machine_info, write_result

HEAVY_MODULES: tuple[str, ...] = ("mlflow", "torch", "torch_geometric", "scipy", "matplotlib", "xgboost")
#: The issue's target: the code location imports in at most this multiple of ``import dagster``.
MAX_RATIO = 2.5
#: Figures before this work (issue 13): 6.4 s, 3.5 × ``import dagster``.
BEFORE = {"definitions_seconds": 6.4, "ratio": 3.5}
REPRODUCE = "make bench-import (= .venv/bin/python -m bench.bench_import)"

_PROBE = ("import json, sys; import {module}; "
          "print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))")


def time_import(module: str) -> tuple[float, list[str]]:
    """Wall seconds of a fresh ``python -c 'import module'`` and the heavy modules it loaded."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _PROBE.format(module=module, heavy=HEAVY_MODULES)],
                          check=True, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    return seconds, json.loads(done.stdout.strip().splitlines()[-1])


def measure(repeats: int) -> dict:
    load_before = os.getloadavg()
    time_import("aqi_assets.definitions")  # warm the file cache once (not counted)
    dagster, definitions, loaded = [], [], []
    for _ in range(repeats):
        dagster.append(time_import("dagster")[0])
        seconds, loaded = time_import("aqi_assets.definitions")
        definitions.append(seconds)
    load_after = os.getloadavg()
    d, a = statistics.median(dagster), statistics.median(definitions)
    return {
        "repeats": repeats,
        "dagster_seconds": round(d, 3),
        "definitions_seconds": round(a, 3),
        "ratio": round(a / d, 2),
        "target_ratio": MAX_RATIO,
        "met": a / d <= MAX_RATIO,
        "heavy_modules_loaded": loaded,
        "runs": {"dagster": [round(x, 3) for x in dagster], "definitions": [round(x, 3) for x in definitions]},
        "before": BEFORE,
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in load_after],
        "machine": machine_info(),
        "started_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "reproduce": REPRODUCE,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    result = measure(args.repeats)
    path = write_result("import", result)
    print(f"import dagster: {result['dagster_seconds']:.2f} s; import aqi_assets.definitions: "
          f"{result['definitions_seconds']:.2f} s = {result['ratio']:.2f}× (target ≤ {MAX_RATIO}×; "
          f"before {BEFORE['definitions_seconds']} s, {BEFORE['ratio']}×); heavy modules loaded: "
          f"{', '.join(result['heavy_modules_loaded']) or 'none'}; load {result['load_avg_before'][0]:.2f} → "
          f"{result['load_avg_after'][0]:.2f}")
    print(f"(results in {path})")


if __name__ == "__main__":
    main()
