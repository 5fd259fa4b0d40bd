"""The dense hourly grid (time × station) that every forecaster computes on.

A canonical long frame becomes a ``Panel``: one contiguous hourly time axis from the first to
the last timestamp, the stations in a fixed order, and for each numeric column a ``(T, N)``
float array with NaN where no reading exists (missing rows and missing cells alike). Wind
direction becomes ``wind_from_deg`` (compass degrees) and the ``wind_u``/``wind_v`` components
(m/s, positive towards east/north); relative humidity is derived from temperature and dew point
when the network does not report it. ``present`` marks the (hour, station) rows the frame held.

``available`` names the variables that have data: a measurement the network does not have (or
that holds no value in the frame) is not available, and features built on it are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from aqi_assets.core.data.schema import NUMERIC_COLUMNS, STATION, TIMESTAMP, WIND_DIRECTION, as_numbers
from aqi_assets.core.data.units import relative_humidity

HOUR = pd.Timedelta(hours=1)
#: Variables computed from the measurements (wind direction in degrees and as components).
DERIVED: tuple[str, ...] = ("wind_from_deg", "wind_u", "wind_v")


@dataclass
class Panel:
    """Hourly values of every variable on a (time, station) grid."""

    times: pd.DatetimeIndex
    stations: tuple[str, ...]
    values: dict[str, np.ndarray]
    present: np.ndarray
    available: frozenset[str] = frozenset()

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.times), len(self.stations)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.values[name]

    def has(self, *names: str) -> bool:
        """Whether every one of ``names`` has data in this panel."""
        return all(name in self.available for name in names)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, stations: list[str] | tuple[str, ...] | None = None) -> "Panel":
        """Lay ``frame`` (canonical schema) on the grid; ``stations`` fixes the station order.

        Rows of stations not in ``stations`` are ignored; duplicate (hour, station) rows keep the
        last. Timestamps are floored to the hour.
        """
        if stations is None:
            stations = sorted(frame[STATION].astype(str).unique()) if len(frame) else []
        stations = tuple(str(s) for s in stations)
        if len(frame) == 0:
            times = pd.DatetimeIndex([], name=TIMESTAMP)
            n = len(stations)
            empty = {c: np.empty((0, n)) for c in NUMERIC_COLUMNS + DERIVED}
            return cls(times, stations, empty, np.zeros((0, n), dtype=bool))
        stamps = pd.to_datetime(frame[TIMESTAMP]).dt.floor("h")
        start, end = stamps.min(), stamps.max()
        times = pd.date_range(start, end, freq="h", name=TIMESTAMP)
        row = ((stamps - start) // HOUR).to_numpy(dtype=np.int64)
        position = {s: i for i, s in enumerate(stations)}
        col = frame[STATION].astype(str).map(position).to_numpy(dtype=float)
        keep = ~np.isnan(col)
        row, col = row[keep], col[keep].astype(np.int64)
        shape = (len(times), len(stations))
        present = np.zeros(shape, dtype=bool)
        present[row, col] = True
        values: dict[str, np.ndarray] = {}
        available: set[str] = set()
        for column in NUMERIC_COLUMNS:
            grid = np.full(shape, np.nan)
            if column in frame.columns:
                grid[row, col] = as_numbers(frame[column], column).to_numpy(float)[keep]
                if np.isfinite(grid).any():
                    available.add(column)
            values[column] = grid
        if "humidity" not in available and {"temperature", "dew_point"} <= available:
            values["humidity"] = relative_humidity(values["temperature"], values["dew_point"])
            available.add("humidity")
        wind = values[WIND_DIRECTION]
        values["wind_from_deg"] = wind
        speed = values["wind_speed"]
        towards = np.radians(wind + 180.0)
        values["wind_u"] = speed * np.sin(towards)
        values["wind_v"] = speed * np.cos(towards)
        if WIND_DIRECTION in available:
            available.add("wind_from_deg")
            if "wind_speed" in available:
                available.update(("wind_u", "wind_v"))
        return cls(times, stations, values, present, frozenset(available))

    def rows(self, first: int, stop: int, available: frozenset[str] | None = None) -> "Panel":
        """Hours ``first..stop - 1`` of this panel (views, not copies); ``available`` defaults to this panel's."""
        return Panel(self.times[first:stop], self.stations, {k: v[first:stop] for k, v in self.values.items()},
                     self.present[first:stop], self.available if available is None else available)

    def to_long(self, arrays: dict[str, np.ndarray], mask: np.ndarray) -> pd.DataFrame:
        """A long frame (``station``, ``timestamp`` + one column per array) of the cells in ``mask``."""
        t_idx, s_idx = np.nonzero(mask)
        out = pd.DataFrame({
            STATION: np.asarray(self.stations, dtype=object)[s_idx],
            TIMESTAMP: self.times[t_idx],
        })
        for name, array in arrays.items():
            out[name] = array[t_idx, s_idx]
        return out


def shift(grid: np.ndarray, hours: int) -> np.ndarray:
    """``grid`` moved ``hours`` later in time (value at t is the one at t - hours); NaN fill."""
    out = np.full_like(grid, np.nan, dtype=float)
    if hours == 0:
        return grid.astype(float, copy=True)
    if hours > 0:
        out[hours:] = grid[:-hours]
    else:
        out[:hours] = grid[-hours:]
    return out


def forward_fill(grid: np.ndarray, limit: int | None = None) -> np.ndarray:
    """Carry the last observation forward in time (at most ``limit`` hours); never backwards."""
    return pd.DataFrame(grid).ffill(limit=limit).to_numpy()


def rolling(grid: np.ndarray, hours: int, how: str, min_periods: int = 1) -> np.ndarray:
    """Trailing ``hours``-window statistic (``mean``, ``std``, ``min``, ``max``, ``sum``) per station.

    Missing values are skipped; NaN where the window holds fewer than ``min_periods`` values.
    Each hour's value is computed from its own window alone, in a fixed order (no running sums),
    so it does not depend on where the grid starts: the rows of a panel and the same rows of a
    longer one agree to the last bit (what ``FeatureGrid`` relies on). ``std`` has ``ddof=1``.
    """
    if how not in ("mean", "std", "min", "max", "sum"):
        raise ValueError(f"unknown rolling statistic {how!r}")
    values = np.asarray(grid, dtype=float)

    def lags():  # the window's values, newest first
        return (shift(values, k) for k in range(hours))

    count = np.zeros(values.shape)
    with np.errstate(all="ignore"):
        if how in ("min", "max"):
            pick = np.fmin if how == "min" else np.fmax
            out = np.full(values.shape, np.nan)
            for lag in lags():
                out = pick(out, lag)
                count += ~np.isnan(lag)
        else:
            out = np.zeros(values.shape)
            for lag in lags():
                out += np.nan_to_num(lag)
                count += ~np.isnan(lag)
            if how != "sum":
                out /= count
            if how == "std":
                squares = np.zeros(values.shape)
                for lag in lags():
                    squares += np.nan_to_num(lag - out) ** 2
                out = np.sqrt(squares / (count - 1))
    return np.where(count >= max(min_periods, 1), out, np.nan)
