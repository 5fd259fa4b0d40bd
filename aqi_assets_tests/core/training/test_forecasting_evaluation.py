"""Scoring a forecaster beside persistence on exactly the same rows, by target hour."""

from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from aqi_assets.core.training.forecasting import ForecastSpec, Forecaster, evaluate, persistence_metrics, scored_predictions
from aqi_assets.core.training.forecasting.panel import Panel, shift


class ShiftedTruth(Forecaster):
    """Test double: forecasts the true future value plus a fixed offset (reads the future on purpose)."""

    kind = "shifted_truth"
    DEFAULTS: dict[str, Any] = {"offset": 0.0}
    FAST: dict[str, Any] = {}

    @property
    def lookback_hours(self) -> int:
        return 2

    def fit(self, train, valid=None, graph=None, progress=None):
        self.training_report = {"seconds": 0.0}
        return self.training_report

    def _predict_grid(self, panel: Panel) -> np.ndarray:
        return shift(panel[self.spec.target], -self.spec.horizon_hours) + self.hyperparams["offset"]

    def _save_model(self, directory: Path) -> dict:
        return {}

    def _load_model(self, directory: Path, state: dict) -> None:
        pass


def frame_of(values: dict[str, list[float]], start="2024-03-01 00:00") -> pd.DataFrame:
    rows = []
    for station, series in values.items():
        for i, value in enumerate(series):
            rows.append((pd.Timestamp(start) + pd.Timedelta(hours=i), station, value))
    return pd.DataFrame(rows, columns=["timestamp", "station", "pm25"])


def test_model_and_persistence_are_scored_on_the_same_rows():
    # a: 0..47 rising by 1 per hour from 10; b has a missing reading at hour 30
    a = [10.0 + i for i in range(48)]
    b = [50.0] * 48
    b[30] = np.nan
    frame = frame_of({"a": a, "b": b})
    model = ShiftedTruth(ForecastSpec(), offset=2.0)
    model.fit(frame)
    metrics = evaluate(model, frame, date(2024, 3, 2), date(2024, 3, 2))
    # target hours on 2 March: 24 per station; b loses hour 30 (no truth) and 31 (no persistence)
    assert metrics["n"] == 24 + 22
    assert metrics["rmse"] == pytest.approx(2.0) and metrics["mae"] == pytest.approx(2.0)
    # persistence is off by 1 for a and exact for b
    assert metrics["persistence_mae"] == pytest.approx(24 / 46)
    assert metrics["persistence_within_20"] == pytest.approx(1.0)
    assert metrics["within_20"] == pytest.approx(1.0)  # 2 / 34 ≤ 20 % and 2 / 50 too


def test_rows_are_chosen_by_target_hour_and_lookback_limits_issue_hours():
    frame = frame_of({"a": [20.0] * 30})
    model = ShiftedTruth(ForecastSpec(horizon_hours=3))
    model.fit(frame)
    scored = scored_predictions(model, frame, date(2024, 3, 1), date(2024, 3, 1))
    # issue hours 2..20 (lookback 2) give target hours 5..23 on 1 March
    assert scored["timestamp"].min() == pd.Timestamp("2024-03-01 02:00")
    assert scored["target_time"].max() == pd.Timestamp("2024-03-01 23:00")
    assert len(scored) == 19
    assert (scored["observed"] == 20.0).all() and (scored["persistence"] == 20.0).all()


def test_persistence_metrics_alone_match_a_hand_computation():
    frame = frame_of({"a": [10.0, 12.0, 16.0, 16.0, np.nan, 20.0]})
    out = persistence_metrics(frame, "pm25", 1, date(2024, 3, 1), date(2024, 3, 1))
    # pairs (10→12), (12→16), (16→16); the NaN hour breaks the last two; 4 > 20 % of 16
    assert out["n"] == 3
    assert out["mae"] == pytest.approx((2 + 4 + 0) / 3)
    assert out["within_20"] == pytest.approx(2 / 3)
