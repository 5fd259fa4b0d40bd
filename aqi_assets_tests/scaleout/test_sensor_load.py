"""One sensor tick over 1,000 simulated stations stays well inside Dagster's 60-second timeout.

The benchmark (``make bench-sensor-load``, bench/bench_sensor_load.py) measures the same ticks
three times each; this keeps one of each, with a generous bound (half the timeout).
"""

from __future__ import annotations

import pytest

from bench.bench_sensor_load import SENSOR_TIMEOUT_SECONDS, build_lake, time_ticks

pytestmark = pytest.mark.integration

DAYS = 45  # the benchmark's history: the drift sensor finds the recalibration at S0005


def test_drift_and_performance_ticks_over_1000_stations_stay_within_the_sensor_timeout(tmp_path):
    lake = build_lake(tmp_path, stations=1000, days=DAYS)
    ticks = time_ticks(lake, repeats=1)
    for name, tick in ticks.items():
        assert tick["max_seconds"] < SENSOR_TIMEOUT_SECONDS / 2, (name, tick)
    # the ticks did real work: both found their trigger (drift at S0005, degraded live error)
    assert ticks["data_drift_sensor"]["run_requests"] == 3, ticks
    assert ticks["performance_degradation_sensor"]["run_requests"] >= 1, ticks
    print(f"sensor ticks over 1,000 stations × {DAYS} days: {ticks}")
