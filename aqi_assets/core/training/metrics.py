"""Forecast error metrics: RMSE, MAE, accuracy within ±20 %, AQI-category accuracy, persistence.

Every function takes aligned arrays of observed and predicted values and ignores pairs where
either is NaN. ``within_20`` is the share of forecasts whose absolute error is at most 20 % of
the observed value (a fraction in [0, 1]). ``scored_metrics`` scores a model and the persistence
forecast on exactly the same rows: those where observation, prediction and persistence value all
exist.
"""

from __future__ import annotations

import numpy as np

from aqi_assets.core.data.aqi import category_index

WITHIN_TOLERANCE = 0.20
METRIC_NAMES: tuple[str, ...] = ("rmse", "mae", "within_20", "aqi_category_accuracy")


def _pairs(observed, predicted) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(observed, dtype=float).ravel()
    p = np.asarray(predicted, dtype=float).ravel()
    if y.shape != p.shape:
        raise ValueError(f"observed and predicted differ in length: {y.size} vs {p.size}")
    ok = ~(np.isnan(y) | np.isnan(p))
    return y[ok], p[ok]


def rmse(observed, predicted) -> float:
    y, p = _pairs(observed, predicted)
    return float(np.sqrt(np.mean((y - p) ** 2))) if y.size else float("nan")


def mae(observed, predicted) -> float:
    y, p = _pairs(observed, predicted)
    return float(np.mean(np.abs(y - p))) if y.size else float("nan")


def within_tolerance(observed, predicted, tolerance: float = WITHIN_TOLERANCE) -> float:
    """Share of forecasts with ``|predicted - observed| <= tolerance × |observed|``."""
    y, p = _pairs(observed, predicted)
    if not y.size:
        return float("nan")
    return float(np.mean(np.abs(p - y) <= tolerance * np.abs(y) + 1e-9))


def within_20(observed, predicted) -> float:
    return within_tolerance(observed, predicted, WITHIN_TOLERANCE)


def aqi_category_accuracy(observed, predicted, pollutant: str = "pm25") -> float:
    """Share of forecasts in the same US EPA 2024 AQI category of ``pollutant`` as the observation."""
    y, p = _pairs(observed, predicted)
    if not y.size:
        return float("nan")
    return float(np.mean(category_index(y, pollutant) == category_index(p, pollutant)))


def forecast_metrics(observed, predicted, pollutant: str = "pm25") -> dict[str, float]:
    """``n``, ``rmse``, ``mae``, ``within_20``, ``aqi_category_accuracy`` (of ``pollutant``) over the valid pairs."""
    y, p = _pairs(observed, predicted)
    return {
        "n": int(y.size),
        "rmse": rmse(y, p),
        "mae": mae(y, p),
        "within_20": within_20(y, p),
        "aqi_category_accuracy": aqi_category_accuracy(y, p, pollutant),
    }


def scored_metrics(observed, predicted, persistence, pollutant: str = "pm25") -> dict[str, float]:
    """The model's and the persistence forecast's metrics on the rows where all three exist.

    Keys: ``n, rmse, mae, within_20, aqi_category_accuracy`` (categories of ``pollutant``, the
    forecast target) and the same four prefixed with ``persistence_``, plus ``rmse_skill`` =
    1 - rmse / persistence_rmse.
    """
    y = np.asarray(observed, dtype=float).ravel()
    p = np.asarray(predicted, dtype=float).ravel()
    q = np.asarray(persistence, dtype=float).ravel()
    if not (y.shape == p.shape == q.shape):
        raise ValueError("observed, predicted and persistence must have the same length")
    ok = ~(np.isnan(y) | np.isnan(p) | np.isnan(q))
    out = forecast_metrics(y[ok], p[ok], pollutant)
    base = forecast_metrics(y[ok], q[ok], pollutant)
    for name in METRIC_NAMES:
        out[f"persistence_{name}"] = base[name]
    skill = 1.0 - out["rmse"] / out["persistence_rmse"] if out["persistence_rmse"] else float("nan")
    out["rmse_skill"] = float(skill)
    return out
