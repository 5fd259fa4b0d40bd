"""Fault injection: seeded sensor faults applied to hourly observation frames, to test triggers.

A ``Fault`` changes one column at one station from a start day on, in a frame of hourly
observations (``timestamp``, ``station`` and the network's columns; any network):

| mode | what the sensor does | e.g. |
|---|---|---|
| ``step`` | every value × ``factor`` from ``start`` on (a recalibration, a relocated mast) | PM2.5 × 1.3 |
| ``spread`` | each day's values spread around that day's mean × ``factor`` (clipped at 0 for non-negative columns) | PM10 within-day std × √2 |
| ``stuck`` | the first reading at or after ``start`` (or ``value``) repeated for ``hours`` hours, gaps included | any column for 24–72 h; a dead sensor reading 0 |
| ``silent`` | no reading for ``hours`` hours (the rows stay, the column is empty) | a pollutant analyser down for 2–5 days |

``days`` limits a step or spread to that many days (``None``: to the end of the frame).
``BENCHMARK_FAULTS`` are the kinds ``make bench-triggers`` injects (the issue's four, then a
dead sensor and a silent one) and ``seeded_faults``
draws reproducible cases (station, start day, and for a kind without a column — ``stuck``,
``stuck_at_zero``, ``silent`` — the column and duration) from a
seed, so a user can replay their own data with faults and see whether their thresholds catch
them, how fast, and at which station-feature::

    from aqi_assets.core.data.faults import seeded_faults
    for fault in seeded_faults("pm25_step", stations, date(2016, 3, 1), date(2017, 1, 31), seed=1):
        faulty = fault.apply(frame)   # a copy; ``frame`` is unchanged
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import date, timedelta

import numpy as np
import pandas as pd

from aqi_assets.core.data.schema import POLLUTANTS, STATION, TIMESTAMP

MODES: tuple[str, ...] = ("step", "spread", "stuck", "silent")
#: The benchmark's fault kinds: mode, column (``None``: drawn from the network's pollutants) and
#: size. New kinds go at the end: a kind's position seeds its draws, so existing cases stay put.
BENCHMARK_FAULTS: dict[str, dict] = {
    "pm25_step": {"mode": "step", "column": "pm25", "factor": 1.3},
    "wind_speed_step": {"mode": "step", "column": "wind_speed", "factor": 0.5},
    "pm10_spread": {"mode": "spread", "column": "pm10", "factor": math.sqrt(2.0)},
    "stuck": {"mode": "stuck", "column": None, "hours": (24, 72)},
    "stuck_at_zero": {"mode": "stuck", "column": None, "hours": (24, 72), "value": 0.0},
    "silent": {"mode": "silent", "column": None, "hours": (48, 120)},
}
#: The order kinds were added in, which seeds each kind's draws (the first four were seeded by
#: their sorted position).
_SEED_ORDER: tuple[str, ...] = ("pm10_spread", "pm25_step", "stuck", "wind_speed_step", "stuck_at_zero", "silent")
#: Columns that cannot go below zero: a widened spread is clipped there.
NON_NEGATIVE: frozenset[str] = frozenset({*POLLUTANTS, "rain", "wind_speed"})


@dataclass(frozen=True)
class Fault:
    """One injected fault: ``mode`` on ``column`` at ``station`` from the start of ``start``."""

    mode: str
    station: str
    column: str
    start: date
    factor: float = 1.0
    hours: int = 24
    days: int | None = None
    kind: str = ""
    #: ``stuck``: the value the sensor repeats (``None``: its first reading)
    value: float | None = None

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"fault mode {self.mode!r} is not one of {list(MODES)}")
        if self.mode in ("step", "spread") and not (self.factor > 0):
            raise ValueError(f"a {self.mode} fault needs a factor > 0, got {self.factor}")
        if self.mode in ("stuck", "silent") and self.hours < 1:
            raise ValueError(f"a {self.mode} fault lasts at least one hour, got {self.hours}")

    @property
    def pair(self) -> tuple[str, str]:
        """The (station, feature) a detector should name."""
        return (self.station, self.column)

    @property
    def end(self) -> pd.Timestamp | None:
        """The first hour no longer affected (``None``: the end of the frame)."""
        if self.mode in ("stuck", "silent"):
            return pd.Timestamp(self.start) + pd.Timedelta(hours=self.hours)
        return None if self.days is None else pd.Timestamp(self.start + timedelta(days=self.days))

    @property
    def last_day(self) -> date | None:
        """The last day with affected hours (``None``: open-ended)."""
        end = self.end
        return None if end is None else (end - pd.Timedelta(hours=1)).date()

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A copy of ``frame`` with the fault injected (a ValueError if the column or station is absent)."""
        if self.column not in frame.columns:
            raise ValueError(f"the frame has no column {self.column!r} (its network does not measure it)")
        out = frame.copy()
        stamps = pd.to_datetime(out[TIMESTAMP])
        rows = (out[STATION].astype(str) == self.station) & (stamps >= pd.Timestamp(self.start))
        if self.end is not None:
            rows &= stamps < self.end
        if not rows.any():
            raise ValueError(f"no rows of station {self.station!r} from {self.start} in the frame")
        values = pd.to_numeric(out.loc[rows, self.column], errors="coerce").astype(float)
        if self.mode == "step":
            new = values * self.factor
        elif self.mode == "spread":
            day_mean = values.groupby(stamps[rows].dt.normalize()).transform("mean")
            new = day_mean + (values - day_mean) * self.factor
            if self.column in NON_NEGATIVE:
                new = new.clip(lower=0.0)
        elif self.mode == "silent":
            new = pd.Series(np.nan, index=values.index)
        elif self.value is not None:
            new = pd.Series(float(self.value), index=values.index)
        else:
            order = stamps[rows].sort_values(kind="stable").index
            first = values.loc[order].dropna()
            if first.empty:
                raise ValueError(f"station {self.station!r} has no {self.column} reading to get stuck at")
            new = pd.Series(float(first.iloc[0]), index=values.index)
        out[self.column] = out[self.column].astype(float)
        out.loc[rows, self.column] = new.to_numpy()
        return out

    def describe(self) -> dict:
        return {"kind": self.kind, "mode": self.mode, "station": self.station, "column": self.column,
                "start": self.start.isoformat(), "factor": round(self.factor, 4),
                "hours": self.hours if self.mode in ("stuck", "silent") else None, "days": self.days,
                **({"value": self.value} if self.value is not None else {})}


def benchmark_fault(kind: str, station: str, start: date, column: str | None = None, hours: int | None = None,
                    days: int | None = None) -> Fault:
    """One fault of a ``BENCHMARK_FAULTS`` kind (``column``/``hours`` fill what the kind leaves open)."""
    if kind not in BENCHMARK_FAULTS:
        raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(BENCHMARK_FAULTS)}")
    spec = BENCHMARK_FAULTS[kind]
    column = spec["column"] or column
    if column is None:
        raise ValueError(f"fault kind {kind!r} needs a column")
    hours = hours if hours is not None else (spec["hours"][0] if "hours" in spec else 24)
    return Fault(spec["mode"], station, column, start, factor=spec.get("factor", 1.0), hours=hours,
                 days=days, kind=kind, value=spec.get("value"))


def seeded_faults(kind: str, stations: list[str], first_day: date, last_day: date, cases: int = 20,
                  seed: int = 0, columns: list[str] | None = None, days: int | None = None) -> list[Fault]:
    """``cases`` faults of ``kind`` at (station, start day) pairs drawn without repeats from a seed.

    Start days are drawn from ``first_day``..``last_day``; a kind without a column also draws it from
    ``columns`` (default: the benchmark's pollutants the caller lists) and its duration from the
    kind's hour range. The same arguments always give the same faults.
    """
    stations = sorted(str(s) for s in stations)
    if not stations:
        raise ValueError("no stations to inject faults at")
    span = (last_day - first_day).days + 1
    if span < 1:
        raise ValueError(f"last_day {last_day} is before first_day {first_day}")
    if cases > span * len(stations):
        raise ValueError(f"{cases} cases do not fit {len(stations)} stations × {span} days")
    spec = BENCHMARK_FAULTS.get(kind)
    if spec is None:
        raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(BENCHMARK_FAULTS)}")
    rng = np.random.default_rng([seed, _SEED_ORDER.index(kind)])
    picks = rng.choice(span * len(stations), size=cases, replace=False)
    faults = []
    for pick in sorted(picks, key=lambda p: (p % span, p // span)):
        station, start = stations[pick // span], first_day + timedelta(days=int(pick % span))
        column, hours = None, None
        if spec["column"] is None:
            pool = columns or ["pm25", "pm10", "no2", "o3", "so2", "co"]
            column = str(pool[int(rng.integers(len(pool)))])
            lo, hi = spec["hours"]
            hours = int(rng.integers(lo, hi + 1))
        faults.append(benchmark_fault(kind, station, start, column=column, hours=hours, days=days))
    return faults


def with_days(fault: Fault, days: int | None) -> Fault:
    """``fault`` limited to ``days`` days (steps and spreads)."""
    return replace(fault, days=days)
