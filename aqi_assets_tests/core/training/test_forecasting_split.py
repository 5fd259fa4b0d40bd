"""ForecastSpec validation and the time-ordered train / validation / holdout split."""

from datetime import date, timedelta

import pandas as pd
import pytest

from aqi_assets.core.configuration.config import TrainingSettings
from aqi_assets.core.training.forecasting import ForecastSpec, split_window
from aqi_assets.core.training.forecasting.split import split_days


def hourly_frame(first: date, days: int, stations=("a", "b")) -> pd.DataFrame:
    times = pd.date_range(pd.Timestamp(first), periods=24 * days, freq="h")
    return pd.DataFrame([(t, s, float(i)) for i, t in enumerate(times) for s in stations],
                        columns=["timestamp", "station", "pm25"])


def test_spec_defaults_and_validation():
    assert ForecastSpec() == ForecastSpec("pm25", 1)
    assert ForecastSpec.from_dict(ForecastSpec("no2", 24).to_dict()) == ForecastSpec("no2", 24)
    with pytest.raises(ValueError, match="unknown target"):
        ForecastSpec(target="pm2.5")
    with pytest.raises(ValueError, match="horizon_hours"):
        ForecastSpec(horizon_hours=0)
    with pytest.raises(Exception):
        ForecastSpec().target = "o3"  # frozen


def test_split_is_consecutive_by_calendar_day_with_holdout_last():
    frame = hourly_frame(date(2024, 1, 1), 40)
    settings = TrainingSettings(window_days=30, validation_days=5, holdout_days=3)
    train, valid, holdout = split_window(frame, settings)
    day = lambda f: pd.to_datetime(f["timestamp"]).dt.date  # noqa: E731
    assert (day(train).min(), day(train).max()) == (date(2024, 1, 11), date(2024, 2, 1))
    assert (day(valid).min(), day(valid).max()) == (date(2024, 2, 2), date(2024, 2, 6))
    assert (day(holdout).min(), day(holdout).max()) == (date(2024, 2, 7), date(2024, 2, 9))
    assert len(train) == 22 * 48 and len(valid) == 5 * 48 and len(holdout) == 3 * 48
    assert train["timestamp"].max() < valid["timestamp"].min()
    assert valid["timestamp"].max() < holdout["timestamp"].min()


def test_split_ends_on_the_requested_day_and_drops_later_rows():
    frame = hourly_frame(date(2024, 1, 1), 40)
    settings = TrainingSettings(window_days=10, validation_days=2, holdout_days=2)
    end = date(2024, 1, 20)
    train, valid, holdout = split_window(frame, settings, end)
    assert pd.Timestamp(holdout["timestamp"].max()).date() == end
    assert pd.Timestamp(train["timestamp"].min()).date() == end - timedelta(days=9)
    assert split_days(settings, end)["valid"] == (date(2024, 1, 17), date(2024, 1, 18))


def test_split_of_an_empty_frame_is_three_empty_frames():
    parts = split_window(hourly_frame(date(2024, 1, 1), 1).iloc[:0], TrainingSettings())
    assert [len(p) for p in parts] == [0, 0, 0]
