"""Choosing a forecaster by kind: the registry of kinds, their presets, and ``make_forecaster``."""

from __future__ import annotations

from typing import Any, Literal

from pathlib import Path

from aqi_assets.core.training.forecasting.base import Forecaster, read_meta
from aqi_assets.core.training.forecasting.spec import ForecastSpec

FORECASTER_KINDS: tuple[str, ...] = ("xgboost", "lstm", "gnn")
Preset = Literal["full", "fast"]


def forecaster_class(kind: str) -> type[Forecaster]:
    """The class implementing ``kind`` ("xgboost" | "lstm" | "gnn")."""
    if kind == "xgboost":
        from aqi_assets.core.training.forecasting.xgboost_forecaster import XGBoostForecaster

        return XGBoostForecaster
    if kind == "lstm":
        from aqi_assets.core.training.forecasting.lstm_forecaster import LSTMForecaster

        return LSTMForecaster
    if kind == "gnn":
        from aqi_assets.core.training.forecasting.gnn_forecaster import GNNForecaster

        return GNNForecaster
    raise ValueError(f"unknown forecaster kind {kind!r}; expected one of {list(FORECASTER_KINDS)}")


def default_hyperparams(kind: str, preset: Preset = "full") -> dict[str, Any]:
    """Every hyperparameter of ``kind``: real-training values, or with the small ``fast`` overrides."""
    klass = forecaster_class(kind)
    if preset not in ("full", "fast"):
        raise ValueError(f"preset must be 'full' or 'fast', not {preset!r}")
    return {**klass.DEFAULTS, **(klass.FAST if preset == "fast" else {})}


def make_forecaster(kind: str, spec: ForecastSpec | None = None, preset: Preset = "full",
                    **hyperparams: Any) -> Forecaster:
    """A new, unfitted forecaster of ``kind`` for ``spec``; keywords override the preset."""
    return forecaster_class(kind)(spec or ForecastSpec(), **{**default_hyperparams(kind, preset), **hyperparams})


def read_forecaster(directory: str | Path) -> Forecaster:
    """Read a forecaster of any kind written by ``Forecaster.save``."""
    return forecaster_class(read_meta(directory)["kind"]).from_saved(directory)
