"""Benchmark: one drift check of 1,000 simulated stations × 12 features, against Evidently.

Both sides see the same 37 days of hourly rows of a simulated city of 1,000 stations: 30
reference days and 7 current days. Ours runs ``evaluate_drift`` on the daily ``feature_stats``
sketches (building the sketches is the daily asset's work and is not timed); Evidently runs its
``DataDriftPreset`` report on the raw rows (the 12 feature columns, every station's rows
pooled). Evidently answers a coarser question there — 12 tests over all stations pooled,
against our 12,000 per-station tests — so the run also times Evidently on the per-station
equivalent (one column per station × feature) for a slice of stations and scales it up; that
figure is printed, not stored.

Writes ``bench/results/drift.json``: ``{"stations", "features", "seconds", "evidently_seconds"}``
(median of the timed repeats for ours, one run for Evidently).
"""

from __future__ import annotations

import json
import os
import statistics
import time
import warnings
from datetime import date, timedelta
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pandas as pd  # noqa: E402

from aqi_assets.core.configuration.config import DriftSettings  # noqa: E402
from aqi_assets.core.monitoring.drift import evaluate_drift  # noqa: E402
from aqi_assets.core.data.feature_stats import compute_feature_stats  # noqa: E402
from aqi_assets.core.data.schema import STAT_FEATURES, STATION, TIMESTAMP  # noqa: E402
from aqi_assets.core.data.sources.simulated import SimulatedSource  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
STATIONS = 1000
REFERENCE_DAYS = 30
CURRENT_DAYS = 7
FIRST_DAY = date(2024, 2, 1)
REPEATS = 5
#: Stations in the per-station Evidently slice (12 columns each), scaled up to all stations.
SLICE_STATIONS = 25


def simulated_days(n_stations: int, days: list[date]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hourly rows of ``days`` and their daily sketches."""
    source = SimulatedSource(seed=42, n_stations=n_stations, start=days[0], end=days[-1])
    frames, sketches = [], []
    for day in days:
        frame = source.read_day(day)
        frames.append(frame)
        sketches.append(compute_feature_stats(frame, day))
    return pd.concat(frames, ignore_index=True), pd.concat(sketches, ignore_index=True)


def time_ours(stats: pd.DataFrame, reference: list[date], current: list[date]) -> tuple[list[float], object]:
    settings = DriftSettings()
    report = evaluate_drift(stats, current, reference, settings)  # warm-up
    timings = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        report = evaluate_drift(stats, current, reference, settings)
        timings.append(time.perf_counter() - start)
    return timings, report


def time_evidently(reference: pd.DataFrame, current: pd.DataFrame) -> float:
    from evidently import Report
    from evidently.presets import DataDriftPreset

    start = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
    snapshot.dict()
    return time.perf_counter() - start


def wide_by_station(rows: pd.DataFrame, stations: list[str]) -> pd.DataFrame:
    """One column per station × feature, one row per hour (Evidently's per-station equivalent)."""
    subset = rows[rows[STATION].isin(stations)]
    blocks = []
    for feature in [f for f in STAT_FEATURES if f in rows.columns]:  # one pivot each keeps them numeric
        block = subset.pivot(index=TIMESTAMP, columns=STATION, values=feature)
        block.columns = [f"{station}/{feature}" for station in block.columns]
        blocks.append(block)
    return pd.concat(blocks, axis=1).reset_index(drop=True)


def main() -> None:
    days = [FIRST_DAY + timedelta(days=i) for i in range(REFERENCE_DAYS + CURRENT_DAYS)]
    reference_days, current_days = days[:REFERENCE_DAYS], days[REFERENCE_DAYS:]
    print(f"simulating {STATIONS} stations × {len(days)} days and sketching them (not timed) ...")
    rows, stats = simulated_days(STATIONS, days)
    n_features = stats["feature"].nunique()

    timings, report = time_ours(stats, reference_days, current_days)
    seconds = statistics.median(timings)

    features = [f for f in STAT_FEATURES if f in rows.columns]  # the simulated network's columns
    day = rows[TIMESTAMP].dt.normalize()
    in_reference = day < pd.Timestamp(current_days[0])
    print("running Evidently DataDriftPreset on the pooled raw rows ...")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        evidently_seconds = time_evidently(rows.loc[in_reference, features], rows.loc[~in_reference, features])
        station_slice = sorted(rows[STATION].unique())[:SLICE_STATIONS]
        wide = wide_by_station(rows, station_slice)
        split = REFERENCE_DAYS * 24
        slice_seconds = time_evidently(wide.iloc[:split], wide.iloc[split:])
    per_station_estimate = slice_seconds * STATIONS / SLICE_STATIONS

    result = {
        "stations": STATIONS,
        "features": int(n_features),
        "seconds": round(seconds, 4),
        "evidently_seconds": round(evidently_seconds, 2),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "drift.json").write_text(json.dumps(result, indent=2) + "\n")

    tested = int(report.table["p_ks"].notna().sum())
    ours = f"evaluate_drift on daily sketches (median of {REPEATS})"
    pooled = "Evidently DataDriftPreset, raw rows pooled over stations"
    per_station = f"Evidently per station × feature ({SLICE_STATIONS} stations, scaled ×{STATIONS // SLICE_STATIONS})"
    print()
    print(f"drift check: {STATIONS} stations × {n_features} features, "
          f"{REFERENCE_DAYS} reference vs {CURRENT_DAYS} current days")
    print(f"{'method':<58}{'compared':>10}{'seconds':>10}")
    print(f"{ours:<58}{tested:>10}{seconds:>10.3f}")
    print(f"{pooled:<58}{len(features):>10}{evidently_seconds:>10.2f}")
    print(f"{per_station:<58}{STATIONS * len(features):>10}{per_station_estimate:>10.0f}")
    print(f"drift found: {len(report.flagged)} station-features flagged; {report.summary()[:160]}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
