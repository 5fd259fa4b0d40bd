"""Scoring a forecaster on a period, beside the persistence forecast on exactly the same rows."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from aqi_assets.core.training.forecasting.base import Forecaster
from aqi_assets.core.training.metrics import scored_metrics
from aqi_assets.core.data.schema import STATION, TIMESTAMP


def scored_predictions(forecaster: Forecaster, frame: pd.DataFrame, start: date, end: date,
                       predictions: pd.DataFrame | None = None) -> pd.DataFrame:
    """The forecasts whose target hour falls on the days ``start``..``end``, with their truths.

    ``frame`` must hold the period plus ``forecaster.lookback_hours`` (and the horizon) before
    it. Columns: the prediction frame's plus ``observed`` (the target at ``target_time``) and
    ``persistence`` (the target at the issue time, i.e. "no change over the horizon"); NaN where
    the frame has no reading. ``predictions``: ``forecaster.predict(frame)`` when already made.
    """
    if predictions is None:
        predictions = forecaster.predict(frame)
    lo, hi = pd.Timestamp(start), pd.Timestamp(end + timedelta(days=1))
    predictions = predictions[(predictions["target_time"] >= lo) & (predictions["target_time"] < hi)]
    target = forecaster.spec.target
    values = frame[[STATION, TIMESTAMP, target]].copy()
    values[STATION] = values[STATION].astype(str)
    values = values.drop_duplicates([STATION, TIMESTAMP], keep="last")
    observed = values.rename(columns={TIMESTAMP: "target_time", target: "observed"})
    persistence = values.rename(columns={target: "persistence"})
    out = predictions.merge(observed, on=[STATION, "target_time"], how="left")
    out = out.merge(persistence, on=[STATION, TIMESTAMP], how="left")
    return out.reset_index(drop=True)


def evaluate(forecaster: Forecaster, frame: pd.DataFrame, start: date, end: date) -> dict[str, float]:
    """Metrics of ``forecaster`` and of persistence for target hours on ``start``..``end``.

    Rows are those where the observation, the persistence value and the prediction all exist.
    Keys: ``n, rmse, mae, within_20, aqi_category_accuracy``, the same four prefixed with
    ``persistence_``, and ``rmse_skill`` (1 - rmse / persistence_rmse).
    """
    scored = scored_predictions(forecaster, frame, start, end)
    return scored_metrics(scored["observed"].to_numpy(float), scored["prediction"].to_numpy(float),
                          scored["persistence"].to_numpy(float), forecaster.spec.target)


def persistence_metrics(frame: pd.DataFrame, target: str, horizon_hours: int, start: date, end: date
                        ) -> dict[str, float]:
    """The persistence forecast alone (target hours on ``start``..``end``): ``n, rmse, mae, ...``."""
    from aqi_assets.core.training.metrics import forecast_metrics

    values = frame[[STATION, TIMESTAMP, target]].drop_duplicates([STATION, TIMESTAMP], keep="last")
    later = values.assign(**{TIMESTAMP: values[TIMESTAMP] - pd.Timedelta(hours=horizon_hours)})
    pairs = values.merge(later, on=[STATION, TIMESTAMP], suffixes=("_now", "_later"))
    target_time = pairs[TIMESTAMP] + pd.Timedelta(hours=horizon_hours)
    keep = (target_time >= pd.Timestamp(start)) & (target_time < pd.Timestamp(end + timedelta(days=1)))
    pairs = pairs[keep]
    return forecast_metrics(pairs[f"{target}_later"].to_numpy(float), pairs[f"{target}_now"].to_numpy(float), target)
