"""The trigger benchmark's machinery on a small synthetic network (the real run is ``make bench-triggers``)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from aqi_assets.core.configuration.config import DriftSettings
from aqi_assets.core.monitoring.drift import DriftState
from aqi_assets.core.data.faults import Fault
from bench.bench_triggers import Sketches, clean_summary, days_between, replay, sketch_station_days

FIRST = date(2024, 1, 1)


def hourly(days: int = 60, stations: int = 6, seed: int = 1) -> pd.DataFrame:
    """A network measuring only no2 and temperature."""
    rng = np.random.default_rng(seed)
    stamps = pd.date_range(pd.Timestamp(FIRST), periods=24 * days, freq="h")
    common = np.repeat(rng.normal(0, 0.3, days), 24)
    parts = [pd.DataFrame({"timestamp": stamps, "station": f"N{s}",
                           "no2": np.exp(3.4 + common + rng.normal(0, 0.2, len(stamps))),
                           "temperature": 10 + 5 * common + rng.normal(0, 1.0, len(stamps))}) for s in range(stations)]
    return pd.concat(parts, ignore_index=True)


def test_replay_and_fault_injection_on_another_network():
    frame = hourly()
    stats = sketch_station_days(frame)
    sketches = Sketches({d: p.reset_index(drop=True) for d, p in stats.groupby(stats["date"].dt.date)})
    settings = DriftSettings(rule="sequential", reference_days=30, retrain_features=["no2"])
    days = days_between(FIRST + timedelta(days=40), FIRST + timedelta(days=59))
    checks, states = replay(sketches, days, settings, DriftState())
    summary = clean_summary(checks)
    assert summary["triggers"] == 0 and summary["smallest_reference_days"] == 30
    fault = Fault("step", "N3", "no2", FIRST + timedelta(days=50), factor=2.0)
    faulty = sketches.with_fault(frame, fault, days_between(fault.start, fault.start + timedelta(days=6)))
    assert set(faulty.overrides) == set(days_between(fault.start, fault.start + timedelta(days=6)))
    found, _ = replay(faulty, days_between(fault.start, fault.start + timedelta(days=6)), settings, states[9])
    first = next(c for c in found if c.flagged)
    assert first.flagged[0] == ("N3", "no2") and (first.day - fault.start).days <= 2
    assert any(c.triggered for c in found)
