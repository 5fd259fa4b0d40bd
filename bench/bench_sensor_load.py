"""Benchmark: sensor ticks over 1,000 simulated stations, against Dagster's 60-second tick timeout.

A lake holds ``DAYS`` days of feature sketches of 1,000 simulated stations (a sensor
recalibration at one station in the last days, so the drift sensor has something to find)
and the daily live scores of the three models (the last week degraded, so the performance
sensor fires). Each sensor tick is evaluated as the daemon would (``build_sensor_context`` on
a real instance), ``REPEATS`` times; the slowest tick is what counts against the timeout.
Writes ``bench/results/sensor_load.json``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import dagster as dg  # noqa: E402
import pandas as pd  # noqa: E402

from aqi_assets.core.configuration.store import next_record, save_record  # noqa: E402
from aqi_assets.core.data.feature_stats import compute_feature_stats  # noqa: E402
from aqi_assets.core.data.lake import Lake  # noqa: E402
from aqi_assets.core.monitoring.live_scoring import score_frame  # noqa: E402
from aqi_assets.core.data.sources.simulated import DriftScenario, SimulatedSource  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SENSOR_TIMEOUT_SECONDS = 60  # Dagster's default sensor evaluation timeout
STATIONS = 1000
DAYS = 45
REPEATS = 3
FIRST = date(2024, 3, 1)
MODELS = ("xgboost", "lstm", "gnn")


def _score_rows(model: str, days: int) -> list[dict]:
    rows = []
    for i in range(days):
        factor = 1.4 if i >= days - 7 else 1.0
        rows.append({
            "date": pd.Timestamp(FIRST + timedelta(days=i)), "model": model, "n": 24 * STATIONS,
            "rmse": 15.0 * factor, "mae": 9.0 * factor, "within_20": 0.72 / (factor ** 0.5),
            "aqi_category_accuracy": 0.8, "persistence_rmse": 19.0, "persistence_mae": 10.0,
            "persistence_within_20": 0.67, "persistence_aqi_category_accuracy": 0.78,
            "rmse_skill": 1 - 15.0 * factor / 19.0, "champion_version": "1",
            "serving_since": FIRST.isoformat(),
        })
    return rows


def build_lake(root: Path, stations: int = STATIONS, days: int = DAYS) -> Lake:
    """Feature sketches of ``stations`` stations for ``days`` days, and the models' daily scores."""
    last = FIRST + timedelta(days=days - 1)
    source = SimulatedSource(seed=5, n_stations=stations, start=FIRST, end=last,
                             scenarios=[DriftScenario("sensor_recalibration", last - timedelta(days=1), station="S0005")])
    lake = Lake(root)
    # The window rules (drift.rule: seed) request the retraining from the recalibration's second
    # day; the sequential default waits for more evidence. Both read the same sketches.
    save_record(lake, next_record(lake, {"drift.rule": "seed"}))
    for i in range(days):
        day = FIRST + timedelta(days=i)
        lake.write_frame("feature_stats", day.isoformat(), compute_feature_stats(source.read_day(day), day))
    scores = score_frame([row for model in MODELS for row in _score_rows(model, days)])
    for day, part in scores.groupby("date"):
        lake.write_frame("model_performance", day.date().isoformat(), part)
    return lake


def time_ticks(lake: Lake, repeats: int = REPEATS) -> dict:
    """Seconds per tick of each sensor (a fresh cursor each time, as after a restart)."""
    from aqi_assets.defs.monitoring.sensors import data_drift_sensor, performance_degradation_sensor
    from aqi_assets.defs.resources import LakeResource

    out = {}
    with dg.instance_for_test() as instance:
        for sensor in (data_drift_sensor, performance_degradation_sensor):
            timings, requested = [], 0
            for _ in range(repeats):
                context = dg.build_sensor_context(instance=instance, resources={"lake": LakeResource(root=str(lake.root))})
                start = time.perf_counter()
                result = sensor(context)
                timings.append(time.perf_counter() - start)
                requested = len(result) if isinstance(result, list) else 0
            out[sensor.name] = {"max_seconds": round(max(timings), 3), "min_seconds": round(min(timings), 3),
                                "run_requests": requested}
    return out


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="aqi-sensor-load-") as tmp:
        started = time.perf_counter()
        lake = build_lake(Path(tmp))
        build_seconds = time.perf_counter() - started
        ticks = time_ticks(lake)
    slowest = max(t["max_seconds"] for t in ticks.values())
    result = {
        "stations": STATIONS, "days_of_sketches": DAYS, "repeats": REPEATS,
        "sensor_timeout_seconds": SENSOR_TIMEOUT_SECONDS, "ticks": ticks,
        "slowest_tick_seconds": slowest, "headroom": round(SENSOR_TIMEOUT_SECONDS / max(slowest, 1e-9), 1),
        "within_timeout": slowest < SENSOR_TIMEOUT_SECONDS, "lake_build_seconds": round(build_seconds, 1),
        "python": sys.version.split()[0], "cpus": os.cpu_count(),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sensor_load.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
