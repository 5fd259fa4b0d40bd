"""Forecast metrics: RMSE, MAE, within ±20 %, AQI-category accuracy and persistence on the same rows."""

import math

import numpy as np
import pytest

from aqi_assets.core.training.metrics import (
    aqi_category_accuracy,
    forecast_metrics,
    mae,
    rmse,
    scored_metrics,
    within_20,
)


def test_rmse_and_mae_on_known_errors():
    observed = [10.0, 20.0, 30.0, 40.0]
    predicted = [13.0, 16.0, 30.0, 40.0]  # errors 3, -4, 0, 0
    assert rmse(observed, predicted) == pytest.approx(math.sqrt((9 + 16) / 4))
    assert mae(observed, predicted) == pytest.approx(7 / 4)


def test_within_20_counts_errors_up_to_a_fifth_of_the_observation():
    observed = [100.0, 100.0, 100.0, 10.0, 10.0]
    predicted = [120.0, 79.0, 81.0, 12.0, 12.5]  # 20 % exactly counts; 21 % and 25 % do not
    assert within_20(observed, predicted) == pytest.approx(3 / 5)


def test_pairs_with_a_missing_value_are_ignored():
    observed = [10.0, np.nan, 30.0]
    predicted = [10.0, 5.0, np.nan]
    assert forecast_metrics(observed, predicted) == {
        "n": 1, "rmse": 0.0, "mae": 0.0, "within_20": 1.0, "aqi_category_accuracy": 1.0}


def test_aqi_category_accuracy_compares_epa_categories():
    observed = [8.0, 30.0, 50.0, 100.0]
    predicted = [9.05, 36.0, 54.0, 130.0]  # same, USG≠Moderate, same, Very Unhealthy≠Unhealthy
    assert aqi_category_accuracy(observed, predicted) == pytest.approx(0.5)


def test_scored_metrics_uses_only_rows_where_all_three_exist():
    observed = np.array([10.0, 20.0, 30.0, 40.0, np.nan])
    predicted = np.array([11.0, np.nan, 30.0, 44.0, 5.0])
    persistence = np.array([12.0, 20.0, 27.0, np.nan, 5.0])
    out = scored_metrics(observed, predicted, persistence)
    assert out["n"] == 2  # rows 0 and 2
    assert out["rmse"] == pytest.approx(math.sqrt(1 / 2))
    assert out["persistence_rmse"] == pytest.approx(math.sqrt((4 + 9) / 2))
    assert out["persistence_mae"] == pytest.approx(2.5)
    assert out["persistence_within_20"] == pytest.approx(1.0)
    assert out["rmse_skill"] == pytest.approx(1 - math.sqrt(0.5) / math.sqrt(6.5))


def test_empty_input_gives_nan_not_an_error():
    out = forecast_metrics([], [])
    assert out["n"] == 0 and math.isnan(out["rmse"]) and math.isnan(out["within_20"])


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="differ in length"):
        rmse([1.0, 2.0], [1.0])
