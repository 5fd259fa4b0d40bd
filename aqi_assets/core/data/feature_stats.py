"""Per-day feature sketches: what drift detection compares, without re-reading raw rows.

For one day, one row per (station, feature) with:

- ``count`` (present values), ``missing`` (absent or unparseable), ``missing_share``;
- ``mean``, ``std`` (population), ``sum``, ``sum_sq`` — so windows pool exactly;
- ``min``, ``p05``, ``p25``, ``p50``, ``p75``, ``p95``, ``max``;
- ``h00`` .. ``h24``: counts on the fixed bin edges of ``schema.histogram_edges`` (the same
  edges every day, so histograms of any days add up bin by bin for KS and PSI);
- ``residual_count``, ``residual_sum``, ``residual_sum_sq``: of the hours' residuals against the
  other stations (``peer_residuals``: the station's value minus their median at the same hour, on
  the fine log scale of ``schema.comparable``), so drift can tell a sensor grown noisier than its
  peers from a day that swung everywhere (sketches from before this scale kept ``peer_*``
  columns, which drift does not read, so the two scales never mix in one reference). Count 0
  where fewer than ``PEER_MIN_OTHERS`` other stations read that hour, for wind direction, and
  for frames without timestamps.

Only the measurements the day's frame has are summarised (a network's own columns). Wind
direction is summarised as degrees (N = 0°, clockwise); its mean/std are not meaningful (see
``schema.CIRCULAR_FEATURES``) but its histogram is.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from aqi_assets.core.data.schema import (
    CIRCULAR_FEATURES, HISTOGRAM_BINS, RESIDUAL_FLOOR_SHARE, STAT_FEATURES, STATION, TIMESTAMP, coerce_numeric,
    comparable, histogram_edges,
)

QUANTILES: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95)
QUANTILE_COLUMNS: tuple[str, ...] = ("p05", "p25", "p50", "p75", "p95")
HIST_COLUMNS: tuple[str, ...] = tuple(f"h{i:02d}" for i in range(HISTOGRAM_BINS))
STAT_COLUMNS: tuple[str, ...] = (
    "date", STATION, "feature", "count", "missing", "missing_share", "mean", "std", "sum", "sum_sq",
    "min", *QUANTILE_COLUMNS, "max", *HIST_COLUMNS, "residual_count", "residual_sum", "residual_sum_sq",
)
#: Other stations reading the same hour that a peer residual needs. On the fine log scale, Beijing
#: cut to four stations (three others) found a noisier PM10 sensor far more often with residuals
#: than with the within-day variance, and the PM2.5 step as often on the development years; cut
#: to three (two others), the PM10 fault barely more often and the step less often. So networks
#: of three stations keep the variance (``make bench-triggers BENCH_ARGS="... --peer-min-others
#: 2"``, README "Triggers on real data").
PEER_MIN_OTHERS = 3


def compute_feature_stats(frame: pd.DataFrame, day: date, features=STAT_FEATURES,
                          peer_min_others: int = PEER_MIN_OTHERS,
                          residual_floor_share: float = RESIDUAL_FLOOR_SHARE) -> pd.DataFrame:
    """Sketch every (station, feature) of one day's observations (see the module docstring).

    ``features`` the frame does not have (not measured by the network) are skipped;
    ``peer_min_others``: see ``PEER_MIN_OTHERS``; ``residual_floor_share``: the residuals' scale
    (``schema.comparable``).
    """
    frame = coerce_numeric(frame)
    features = [f for f in features if f in frame.columns]
    codes, stations = pd.factorize(frame[STATION].astype(str), sort=True)
    n_stations = len(stations)
    if n_stations == 0 or not features:
        return pd.DataFrame(columns=list(STAT_COLUMNS))
    order = np.argsort(codes, kind="stable")
    codes_sorted = codes[order]
    rows_per_station = np.bincount(codes_sorted, minlength=n_stations)
    width = int(rows_per_station.max())
    starts = np.concatenate(([0], np.cumsum(rows_per_station)[:-1]))
    position = np.arange(len(codes_sorted)) - starts[codes_sorted]

    hours = pd.factorize(frame[TIMESTAMP])[0][order] if TIMESTAMP in frame.columns else None
    blocks = []
    for feature in features:
        values = frame[feature].to_numpy(dtype=float)[order]
        peer = np.full((n_stations, width), np.nan)
        if hours is not None and feature not in CIRCULAR_FEATURES:
            scaled = comparable(feature, values, residual_floor_share)
            peer[codes_sorted, position] = peer_residuals(hours, scaled, peer_min_others)
        peer_present = ~np.isnan(peer)
        grid = np.full((n_stations, width), np.nan)
        grid[codes_sorted, position] = values
        present = ~np.isnan(grid)
        count = present.sum(axis=1)
        total = np.where(present, grid, 0.0).sum(axis=1)
        total_sq = np.where(present, grid * grid, 0.0).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = total / count
            var = np.maximum(total_sq / count - mean * mean, 0.0)
            all_missing = count == 0
            safe = np.where(present, grid, np.inf)
            vmin = np.where(all_missing, np.nan, safe.min(axis=1))
            safe = np.where(present, grid, -np.inf)
            vmax = np.where(all_missing, np.nan, safe.max(axis=1))
        quantiles = _row_quantiles(grid, count)
        bins = np.searchsorted(histogram_edges(feature)[1:-1], values, side="right")
        ok = ~np.isnan(values)
        hist = np.bincount(
            codes_sorted[ok] * HISTOGRAM_BINS + bins[ok], minlength=n_stations * HISTOGRAM_BINS
        ).reshape(n_stations, HISTOGRAM_BINS)
        block = pd.DataFrame({
            STATION: stations,
            "feature": feature,
            "count": count,
            "missing": rows_per_station - count,
            "missing_share": (rows_per_station - count) / rows_per_station,
            "mean": mean,
            "std": np.sqrt(var),
            "sum": total,
            "sum_sq": total_sq,
            "min": vmin,
            **{name: quantiles[:, i] for i, name in enumerate(QUANTILE_COLUMNS)},
            "max": vmax,
        })
        block[list(HIST_COLUMNS)] = hist
        block["residual_count"] = peer_present.sum(axis=1)
        block["residual_sum"] = np.where(peer_present, peer, 0.0).sum(axis=1)
        block["residual_sum_sq"] = np.where(peer_present, peer * peer, 0.0).sum(axis=1)
        blocks.append(block)
    stats = pd.concat(blocks, ignore_index=True)
    stats.insert(0, "date", pd.Timestamp(day))
    return stats[list(STAT_COLUMNS)]


def peer_residuals(hours: np.ndarray, values: np.ndarray, min_others: int = PEER_MIN_OTHERS) -> np.ndarray:
    """Each value minus the median of the other values of its hour (``hours``: integer codes, one
    per value; a station reads once an hour); NaN where the value is missing or fewer than
    ``min_others`` others are present. Every hour at once: the others' median is read off the
    hour's sorted values, skipping the value's own rank."""
    out = np.full(len(values), np.nan)
    ok = ~np.isnan(values)
    if not ok.any():
        return out
    rows = np.flatnonzero(ok)
    hour, value = hours[rows], values[rows]
    order = np.lexsort((value, hour))
    rows, hour, value = rows[order], hour[order], value[order]
    size = np.bincount(hour, minlength=int(hour.max()) + 1)
    start = np.concatenate(([0], np.cumsum(size)[:-1]))
    rank = np.arange(len(rows)) - start[hour]
    others = size[hour] - 1

    def other(i: np.ndarray) -> np.ndarray:  # the i-th smallest of the others (0-based)
        return value[np.minimum(start[hour] + i + (i >= rank), len(value) - 1)]

    half = np.maximum(others - 1, 0) // 2
    median = np.where(others % 2 == 1, other(half), (other(half) + other(half + 1)) / 2.0)
    enough = others >= max(min_others, 1)
    out[rows[enough]] = value[enough] - median[enough]
    return out


def _row_quantiles(grid: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Linear-interpolated quantiles per row, ignoring NaN (NaN where a row has no values)."""
    ordered = np.sort(grid, axis=1)  # NaN sort last
    out = np.full((grid.shape[0], len(QUANTILES)), np.nan)
    has = count > 0
    if not has.any():
        return out
    n = count[has].astype(float)
    rows = ordered[has]
    idx = np.arange(rows.shape[0])
    for j, q in enumerate(QUANTILES):
        pos = q * (n - 1)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, n.astype(int) - 1)
        frac = pos - lo
        out[has, j] = rows[idx, lo] * (1 - frac) + rows[idx, hi] * frac
    return out


def pool_stats(stats: pd.DataFrame, by=(STATION, "feature")) -> pd.DataFrame:
    """Pool sketches over days (or stations): exact count/mean/std, summed histograms.

    Quantiles do not pool exactly and are left out; use the histogram instead.
    """
    keys = list(by)
    peers = [c for c in ("residual_count", "residual_sum", "residual_sum_sq") if c in stats.columns]
    summed = stats.groupby(keys, sort=True)[["count", "missing", "sum", "sum_sq", *HIST_COLUMNS, *peers]].sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        summed["mean"] = summed["sum"] / summed["count"]
        var = summed["sum_sq"] / summed["count"] - summed["mean"] ** 2
        summed["std"] = np.sqrt(np.maximum(var, 0.0))
        summed["missing_share"] = summed["missing"] / (summed["count"] + summed["missing"])
    summed["days"] = stats.groupby(keys, sort=True)["date"].nunique()
    return summed.reset_index()
