"""Benchmark: feature sketches of one day of 1,000 simulated stations on one core."""

from __future__ import annotations

import json
import os
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from aqi_assets.core.data.feature_stats import compute_feature_stats  # noqa: E402
from aqi_assets.core.data.sources.simulated import SimulatedSource  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    day = date(2024, 1, 15)
    frame = SimulatedSource(n_stations=1000).read_day(day)
    compute_feature_stats(frame, day)  # warm-up (imports, allocations)
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        stats = compute_feature_stats(frame, day)
        timings.append(time.perf_counter() - start)
    result = {"stations": 1000, "rows": len(frame), "seconds": round(min(timings), 4),
              "median_seconds": round(sorted(timings)[2], 4), "stat_rows": len(stats)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "feature_stats.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
