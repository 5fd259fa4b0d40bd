"""Tabular features for one (station, issue hour) row, computed only from hours ≤ the issue hour.

Groups (each a set of ``(T, N)`` grids on the ``Panel``):

- **own history** of the target: the current value, lags, changes, trailing mean/std/min/max;
- **own pollutants and weather** now, a few of their recent changes, wind as u/v components;
- **calendar** of the *target* hour: hour of day, weekday, season (cyclic encodings);
- **network**: the mean, max, min and spread of the target over every station now and its
  change over the last hour; the graph-weighted mean of the neighbours' current values and
  changes; the *upwind* neighbours' mean (edges weighted by how well the wind at the source
  points along the edge) and an advection term (wind speed × alignment × neighbour excess);
  the nearest neighbours' current values and last-hour changes, nearest first.

Without a graph the network group keeps only the whole-network statistics. Features built on a
variable the panel does not have (``Panel.available``: the network does not measure it) are left
out, so a model never learns from an all-missing column.
"""

from __future__ import annotations

import numpy as np

from aqi_assets.core.training.forecasting.panel import Panel, forward_fill, rolling, shift
from aqi_assets.core.training.forecasting.spec import ForecastSpec
from aqi_assets.core.data.station_graph import StationGraph

TARGET_LAGS: tuple[int, ...] = (1, 2, 3, 4, 6, 9, 12, 18, 24)
ROLLING_HOURS: tuple[int, ...] = (3, 6, 12, 24, 72)
#: Variables read as they are at the issue hour (when the panel has them).
CURRENT_VALUES: tuple[str, ...] = ("pm25", "pm10", "so2", "no2", "co", "o3", "temperature", "pressure", "dew_point",
                                   "humidity", "rain", "wind_speed", "wind_u", "wind_v")
#: Variables whose change over the last hour is a feature.
HOURLY_CHANGES: tuple[str, ...] = ("pm10", "co", "no2", "dew_point", "wind_speed", "temperature", "humidity")
#: Variables whose change over the last three hours is a feature.
OTHER_CHANGES: tuple[str, ...] = ("pm10", "co", "no2", "o3", "pressure", "temperature", "dew_point", "wind_speed")
#: Hours of history the features read (the longest trailing window).
LOOKBACK_HOURS = 72
#: The current target value may be carried forward this many hours when the reading is missing.
BASE_FILL_HOURS = 2


def base_value(panel: Panel, spec: ForecastSpec) -> np.ndarray:
    """The latest observed target value at each hour (carried at most ``BASE_FILL_HOURS``)."""
    return forward_fill(panel[spec.target], limit=BASE_FILL_HOURS)


def tabular_features(
    panel: Panel,
    spec: ForecastSpec,
    graph: StationGraph | None,
    n_nearest: int = 6,
    network: bool = True,
) -> dict[str, np.ndarray]:
    """Every feature as a ``(T, N)`` grid, by name, in a fixed order."""
    y = panel[spec.target]
    base = base_value(panel, spec)
    f: dict[str, np.ndarray] = {}

    # own history
    f["y_now"] = y
    f["y_base"] = base
    for lag in TARGET_LAGS:
        f[f"y_lag{lag}"] = shift(y, lag)
    same_hour = 24 - spec.horizon_hours % 24
    if same_hour not in TARGET_LAGS and same_hour != 24:
        f[f"y_lag{same_hour}"] = shift(y, same_hour)  # the target hour, one day before
    f["y_diff1"] = base - shift(base, 1)
    f["y_diff3"] = base - shift(base, 3)
    for hours in ROLLING_HOURS:
        f[f"y_mean{hours}"] = rolling(y, hours, "mean")
    f["y_std6"] = rolling(y, 6, "std", min_periods=2)
    f["y_std24"] = rolling(y, 24, "std", min_periods=2)
    f["y_min24"] = rolling(y, 24, "min")
    f["y_max24"] = rolling(y, 24, "max")
    f["y_log_base"] = np.log1p(np.clip(base, 0, None))

    # own pollutants and weather
    for name in CURRENT_VALUES:
        if name != spec.target and panel.has(name):
            f[name] = panel[name]
    if panel.has("temperature", "dew_point"):
        f["dew_depression"] = panel["temperature"] - panel["dew_point"]
    if spec.target in ("pm25", "pm10") and panel.has("pm25", "pm10"):
        with np.errstate(all="ignore"):
            f["pm25_pm10_ratio"] = panel["pm25"] / np.where(panel["pm10"] > 0, panel["pm10"], np.nan)
    for name in HOURLY_CHANGES:
        if name != spec.target and panel.has(name):
            f[f"{name}_diff1"] = panel[name] - shift(panel[name], 1)
    for name in OTHER_CHANGES:
        if name != spec.target and panel.has(name):
            f[f"{name}_diff3"] = panel[name] - shift(panel[name], 3)
    if panel.has("rain"):
        f["rain_sum6"] = rolling(panel["rain"], 6, "sum")
    if panel.has("wind_u", "wind_v"):
        f["wind_u_mean6"] = rolling(panel["wind_u"], 6, "mean")
        f["wind_v_mean6"] = rolling(panel["wind_v"], 6, "mean")
    if panel.has("wind_speed"):
        f["wind_speed_mean24"] = rolling(panel["wind_speed"], 24, "mean")

    # calendar of the target hour
    n = len(panel.stations)
    target_times = panel.times + np.timedelta64(spec.horizon_hours, "h")
    hour = np.asarray(target_times.hour, dtype=float)
    doy = np.asarray(target_times.dayofyear, dtype=float)
    column = lambda v: np.repeat(np.asarray(v, dtype=float)[:, None], n, axis=1)  # noqa: E731
    f["hour"] = column(hour)
    f["hour_sin"] = column(np.sin(2 * np.pi * hour / 24))
    f["hour_cos"] = column(np.cos(2 * np.pi * hour / 24))
    f["weekday"] = column(target_times.dayofweek)
    f["season_sin"] = column(np.sin(2 * np.pi * doy / 365.25))
    f["season_cos"] = column(np.cos(2 * np.pi * doy / 365.25))

    if network:
        f.update(network_features(panel, spec, graph, base, n_nearest))
    return f


def network_features(
    panel: Panel, spec: ForecastSpec, graph: StationGraph | None, base: np.ndarray, n_nearest: int
) -> dict[str, np.ndarray]:
    """Whole-network statistics and, with a graph, neighbour and upwind features."""
    f: dict[str, np.ndarray] = {}
    n = len(panel.stations)
    diff = base - shift(base, 1)
    with np.errstate(all="ignore"), _quiet_nan_warnings():
        column = lambda v: np.repeat(v[:, None], n, axis=1)  # noqa: E731
        net_mean = np.nanmean(base, axis=1)
        f["net_mean"] = column(net_mean)
        f["net_max"] = column(np.nanmax(base, axis=1))
        f["net_min"] = column(np.nanmin(base, axis=1))
        f["net_std"] = column(np.nanstd(base, axis=1))
        f["net_diff1"] = column(np.nanmean(diff, axis=1))
        f["net_diff3"] = column(net_mean - np.nanmean(shift(base, 3), axis=1))
        f["y_minus_net"] = base - f["net_mean"]
    if graph is None or graph.n_edges == 0:
        return f
    graph = graph.for_stations(panel.stations)
    src, dst, w = graph.source, graph.target, graph.weight
    f["nb_mean"] = _edge_mean(base[:, src], w, dst, n)
    f["nb_diff1"] = _edge_mean(diff[:, src], w, dst, n)
    diff3 = base - shift(base, 3)
    f["nb_diff3"] = _edge_mean(diff3[:, src], w, dst, n)
    if panel.has("dew_point"):
        dew_change = panel["dew_point"] - shift(panel["dew_point"], 3)
        f["nb_dew_diff3"] = _edge_mean(dew_change[:, src], w, dst, n)
    f["nb_excess"] = f["nb_mean"] - base
    f.update(_nearest(graph, base, diff, n, n_nearest))
    if not panel.has("wind_from_deg"):
        return f
    align = graph.wind_alignment(panel["wind_from_deg"])  # (T, E)
    upwind = w[None, :] * np.clip(align, 0.0, None)
    f["upwind_mean"] = _edge_mean(base[:, src], upwind, dst, n)
    f["upwind_diff1"] = _edge_mean(diff[:, src], upwind, dst, n)
    f["upwind_diff3"] = _edge_mean(diff3[:, src], upwind, dst, n)
    if panel.has("wind_speed"):
        speed = np.nan_to_num(panel["wind_speed"][:, src])
        excess = base[:, src] - base[:, dst]
        f["advection"] = _edge_mean(excess * speed, upwind, dst, n, normalise_by=w)
    f["upwind_weight"] = _edge_sum(upwind, dst, n)
    return f


def _nearest(graph: StationGraph, base: np.ndarray, diff: np.ndarray, n: int, n_nearest: int) -> dict[str, np.ndarray]:
    """The nearest neighbours' current values and last-hour changes, nearest first."""
    f: dict[str, np.ndarray] = {}
    src, dst = graph.source, graph.target
    dist = np.nan_to_num(graph.distance_km, nan=np.inf)
    for rank in range(n_nearest):
        idx = np.full(n, -1)
        for i in range(n):
            sel = np.flatnonzero(dst == i)
            if len(sel) > rank:
                idx[i] = src[sel[np.argsort(dist[sel], kind="stable")[rank]]]
        value = np.where(idx >= 0, base[:, np.maximum(idx, 0)], np.nan)
        change = np.where(idx >= 0, diff[:, np.maximum(idx, 0)], np.nan)
        f[f"nn{rank + 1}_value"] = value
        f[f"nn{rank + 1}_diff1"] = change
    return f


def _edge_sum(weights: np.ndarray, dst: np.ndarray, n: int) -> np.ndarray:
    """Per target node, the sum over incoming edges of ``weights`` (``(T, E)`` or ``(E,)``)."""
    from scipy import sparse  # imported here: the code location loads this module without scipy

    w = np.atleast_2d(weights)
    incidence = sparse.csr_matrix((np.ones(len(dst)), (dst, np.arange(len(dst)))), shape=(n, len(dst)))
    return np.asarray((incidence @ w.T).T)


def _edge_mean(values: np.ndarray, weights: np.ndarray, dst: np.ndarray, n: int,
               normalise_by: np.ndarray | None = None) -> np.ndarray:
    """Per target node, Σ w·value / Σ w over incoming edges whose value is known (NaN if none)."""
    w = np.broadcast_to(weights, values.shape) * ~np.isnan(values)
    num = _edge_sum(np.nan_to_num(values) * w, dst, n)
    den_w = w if normalise_by is None else np.broadcast_to(normalise_by, values.shape) * ~np.isnan(values)
    den = _edge_sum(den_w, dst, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


class _quiet_nan_warnings:
    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)
