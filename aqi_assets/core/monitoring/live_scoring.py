"""Live scoring: the serving model's error on one day of observed values, beside persistence."""

from __future__ import annotations

import math
from datetime import date, timedelta

import pandas as pd

from aqi_assets.core.data.datasets import OBSERVATIONS
from aqi_assets.core.training.forecasting import Forecaster, evaluate
from aqi_assets.core.data.lake import Lake
from aqi_assets.core.data.schema import coerce_numeric
from aqi_assets.core.monitoring.triggers import PERFORMANCE_COLUMNS

PERFORMANCE_DATASET = "model_performance"
#: Model-version tag with the last day of the version's training window (set at registration).
TRAINED_THROUGH_TAG = "aqi.trained_through"
#: Per-day score columns: the trigger rules' columns plus which version served and since when.
SCORE_COLUMNS: tuple[str, ...] = PERFORMANCE_COLUMNS + (
    "persistence_aqi_category_accuracy", "rmse_skill", "champion_version", "serving_since",
)


def history_for(lake: Lake, day: date, lookback_hours: int, horizon_hours: int) -> pd.DataFrame:
    """Stored observations covering ``day`` and the lookback (plus horizon) before it."""
    days_back = math.ceil((lookback_hours + horizon_hours) / 24) + 1
    days = [day - timedelta(days=i) for i in range(days_back, -1, -1)]
    frame = lake.read_days(OBSERVATIONS, days)
    return coerce_numeric(frame) if len(frame) else frame


def in_training_window(day: date, trained_through: date | str | None) -> bool:
    """Whether ``day`` is one the model was trained on (or before): such a day is never scored live,
    since its in-sample error would make the model look better than it is (a backfill asks for them)."""
    if trained_through in (None, ""):
        return False
    last = date.fromisoformat(trained_through) if isinstance(trained_through, str) else trained_through
    return day <= last


def score_day(model: str, forecaster: Forecaster, version: str, serving_since: str | None,
              history: pd.DataFrame, day: date) -> dict | None:
    """One row of ``SCORE_COLUMNS`` for ``day`` (``None`` when nothing could be scored)."""
    if history.empty:
        return None
    metrics = evaluate(forecaster, history, day, day)
    if not metrics.get("n"):
        return None
    row = {"date": pd.Timestamp(day), "model": model, "champion_version": str(version),
           "serving_since": serving_since or ""}
    row.update({k: metrics.get(k) for k in SCORE_COLUMNS if k in metrics})
    return row


def score_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(SCORE_COLUMNS))


def performance_history(lake: Lake, since: date | None = None) -> pd.DataFrame:
    """Every stored daily score from ``since`` on (all models), oldest first."""
    days = [d for d in lake.days(PERFORMANCE_DATASET) if since is None or d >= since]
    frame = lake.read_days(PERFORMANCE_DATASET, days)
    if frame.empty:
        return score_frame([])
    return frame.sort_values(["date", "model"], ignore_index=True)
