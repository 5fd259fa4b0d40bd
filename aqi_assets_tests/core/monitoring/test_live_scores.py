"""Live scores never come from days inside the scored model's training window."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from aqi_assets.core.configuration.config import RetrainingConfig
from aqi_assets.core.data.lake import Lake
from aqi_assets.core.monitoring.live_scoring import in_training_window, score_frame
from aqi_assets.core.monitoring.checks import check_performance, serving_rows

SERVING_SINCE = date(2024, 3, 11)


def rows(first: date, days: int, rmse: float) -> list[dict]:
    return [{
        "date": pd.Timestamp(first + timedelta(days=i)), "model": "xgboost", "n": 280, "rmse": rmse,
        "mae": rmse * 0.6, "within_20": 0.72, "aqi_category_accuracy": 0.8, "persistence_rmse": 19.0,
        "persistence_mae": 10.0, "persistence_within_20": 0.67, "persistence_aqi_category_accuracy": 0.78,
        "rmse_skill": 1 - rmse / 19.0, "champion_version": "3", "serving_since": SERVING_SINCE.isoformat(),
    } for i in range(days)]


def test_days_up_to_the_training_end_are_in_the_window():
    assert in_training_window(date(2024, 3, 10), "2024-03-10")
    assert in_training_window(date(2024, 1, 1), date(2024, 3, 10))
    assert not in_training_window(date(2024, 3, 11), "2024-03-10")
    assert not in_training_window(date(2024, 3, 11), None) and not in_training_window(date(2024, 3, 11), "")


def test_backfilled_in_sample_scores_are_not_the_reference(tmp_path):
    # A backfill scored ten in-sample days (RMSE 8) before the model served; live it scores 15.
    history = score_frame(rows(SERVING_SINCE - timedelta(days=10), 10, 8.0) + rows(SERVING_SINCE, 28, 15.0))
    kept, since = serving_rows(history, "xgboost")
    assert since == SERVING_SINCE and pd.to_datetime(kept["date"]).min() == pd.Timestamp(SERVING_SINCE)
    assert len(kept) == 28
    lake = Lake(tmp_path)
    for day, part in history.groupby("date"):
        lake.write_frame("model_performance", day.date().isoformat(), part)
    check = check_performance(lake, RetrainingConfig())
    assert check.triggers == []  # steady at 15: no degradation against in-sample 8
    assert check.models["xgboost"]["days_scored"] == 28
    assert check.models["xgboost"]["score"] == 1.0
