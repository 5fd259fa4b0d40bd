"""Benchmark: how steady is a station's offset from its peers on Beijing, and how big is a fault in it?

The figures behind the README's "what is still missed" paragraph (``make bench-peer-offsets``,
``bench/results/peer_offsets.json``), on the real data 2015-03-01..2017-02-28:

- ``noise``: the daily offset of log(daily mean + floor) from the network median, as the drift
  rule uses it, against the daily mean of hourly log-ratios to the other stations' median (its
  median absolute deviation, MAD, per station, averaged);
- ``fault_size``: a PM2.5 × 1.3 step and a PM10 within-day std × √2 (``faults.Fault``) at each
  station for the whole period, as the shift of the drift rule's daily statistic in its own
  daily standard deviations (1.4826 × MAD);
- ``steadier_peers``: out of sample (a 30-day reference, the next 7 days, every 9 days), the
  median |offset − reference median| / reference MAD for the network median, for a regression of
  the offset on the day's weather and network level (365-day fit), and for the mean of the three
  best-correlated peers: lower is steadier.
"""

from __future__ import annotations

import json
import math
import os
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import write_result

BEIJING = Path(os.environ.get("AQI_BEIJING_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "beijing"))
FIRST, LAST = date(2015, 3, 1), date(2017, 2, 28)
FLOORS = {"pm25": 10.0, "pm10": 20.0}


def _mad(x: pd.Series) -> float:
    x = x.dropna()
    return float((x - x.median()).abs().median())


def noise(frame: pd.DataFrame, column: str) -> dict:
    floor = FLOORS[column]
    wide = frame.pivot_table(index="timestamp", columns="station", values=column)
    day = wide.index.floor("D")
    daily = np.log(wide.groupby(day).mean().clip(lower=0) + floor)
    offset = daily.sub(daily.median(axis=1), axis=0)
    logged = np.log(wide.clip(lower=0) + floor)
    hourly = pd.DataFrame({s: (logged[s] - logged.drop(columns=s).median(axis=1)).groupby(day).mean()
                           for s in wide.columns})
    return {"daily_offset_mad": round(float(np.mean([_mad(offset[s]) for s in offset])), 3),
            "hourly_log_ratio_mad": round(float(np.mean([_mad(hourly[s]) for s in hourly])), 3)}


def fault_size(frame: pd.DataFrame, column: str, mode: str, factor: float) -> dict:
    from aqi_assets.core.data.faults import Fault

    floor = FLOORS[column]

    def statistic(part: pd.DataFrame) -> pd.Series:
        g = part.groupby([part["timestamp"].dt.floor("D"), "station"])[column]
        if mode == "step":
            return np.log(g.mean().clip(lower=0) + floor)
        return np.log(g.var(ddof=0) + (0.01 * floor) ** 2)

    clean = statistic(frame).unstack()
    sizes = []
    for station in clean.columns:
        fault = Fault(mode, station, column, FIRST, factor=factor)
        faulty = clean.copy()
        faulty[station] = statistic(fault.apply(frame[frame["station"] == station])).xs(station, level="station")
        before = clean.sub(clean.median(axis=1), axis=0)[station]
        after = faulty.sub(faulty.median(axis=1), axis=0)[station]
        sizes.append(float((after - before).median()) / (1.4826 * _mad(before)))
    return {"mean": round(float(np.mean(sizes)), 2), "min": round(min(sizes), 2), "max": round(max(sizes), 2)}


def steadier_peers(frame: pd.DataFrame, column: str, reference: int = 30, fit_days: int = 365) -> dict:
    floor = FLOORS[column]
    frame = frame.assign(day=frame["timestamp"].dt.floor("D"))
    radians = np.deg2rad(frame["wind_direction"])
    frame = frame.assign(u=frame["wind_speed"] * np.sin(radians), v=frame["wind_speed"] * np.cos(radians))
    level = np.log(frame.pivot_table(index="day", columns="station", values=column).clip(lower=0) + floor)
    network = level.median(axis=1).rename("network")
    weather = frame.groupby("day")[["u", "v", "wind_speed", "temperature", "dew_point", "pressure", "rain"]].mean()
    covariates = pd.concat([network, weather], axis=1)
    offset = level.sub(network, axis=0)
    ratios: dict[str, list[float]] = {"network_median": [], "weather_regression": [], "best_3_peers": []}
    for t0 in range(fit_days, len(level) - 7, 9):
        ref, cur = slice(t0 - reference, t0), slice(t0, t0 + 7)
        for station in level.columns:
            y_ref, y_cur = offset[station].iloc[ref].dropna(), offset[station].iloc[cur].dropna()
            if len(y_ref) < reference * 0.6 or len(y_cur) < 3:
                continue
            scale = _mad(y_ref)
            ratios["network_median"].append(float((y_cur - y_ref.median()).abs().median()) / scale)
            fit = slice(t0 - fit_days, t0)
            y, x = offset[station].iloc[fit], covariates.iloc[fit]
            ok = y.notna() & x.notna().all(axis=1)
            mu, sd = x[ok].mean(), x[ok].std() + 1e-9
            design = np.c_[np.ones(ok.sum()), ((x[ok] - mu) / sd).to_numpy()]
            beta = np.linalg.solve(design.T @ design + 3 * np.eye(design.shape[1]), design.T @ y[ok].to_numpy())
            residual = pd.Series(y[ok].to_numpy() - design @ beta, index=y[ok].index)
            x_cur = covariates.iloc[cur].loc[y_cur.index]
            predicted = np.c_[np.ones(len(x_cur)), ((x_cur - mu) / sd).to_numpy()] @ beta
            recent = residual.iloc[-reference:]
            ratios["weather_regression"].append(
                float(np.median(np.abs(y_cur.to_numpy() - predicted - recent.median()))) / scale)
            peers = level.iloc[ref].drop(columns=station)
            best = peers.corrwith(level[station].iloc[ref]).sort_values(ascending=False).index[:3]
            own_ref = (level[station] - level[best].mean(axis=1)).iloc[ref].dropna()
            own_cur = (level[station] - level[best].mean(axis=1)).iloc[cur].dropna()
            ratios["best_3_peers"].append(float((own_cur - own_ref.median()).abs().median()) / scale)
    return {name: round(float(np.median(values)), 3) for name, values in ratios.items()}


def main(argv: list[str]) -> None:
    from aqi_assets.core.data.sources.prsa import prsa_source

    frame = prsa_source(str(BEIJING)).read_range(FIRST, LAST)
    frame["station"] = frame["station"].astype(str)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    result = {
        "period": [FIRST.isoformat(), LAST.isoformat()],
        "noise": {"pm25": noise(frame, "pm25")},
        "fault_size": {"pm25_step_x1.3": fault_size(frame, "pm25", "step", 1.3),
                       "pm10_spread_std_x_sqrt2": fault_size(frame, "pm10", "spread", math.sqrt(2.0))},
        "steadier_peers": {"pm25": steadier_peers(frame, "pm25")},
        "reproduce": "make bench-peer-offsets (= .venv/bin/python -m bench.bench_peer_offsets)",
    }
    write_result("peer_offsets", result)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
