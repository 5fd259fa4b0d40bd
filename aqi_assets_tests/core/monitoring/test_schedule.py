"""Schedule adaptation follows the defaults table exactly; due dates raise schedule triggers."""

from __future__ import annotations

from datetime import date

import pytest

from aqi_assets.core.configuration.config import ConfigError, ScheduleSettings, parse_config
from aqi_assets.core.monitoring.schedule import adapt_interval, base_interval, schedule_due

#: The seed's adaptive schedule (7/14/21 days, adapted within 3..30), which the table below follows.
SETTINGS = ScheduleSettings(days={"xgboost": 7, "lstm": 14, "gnn": 21}, min_days=3, max_days=30)


def test_base_intervals_are_a_two_month_backstop_and_the_seed_schedule_stays_configurable():
    shipped = ScheduleSettings()
    assert [base_interval(m, shipped) for m in ("xgboost", "lstm", "gnn")] == [60, 60, 60]
    assert [base_interval(m, SETTINGS) for m in ("xgboost", "lstm", "gnn")] == [7, 14, 21]


def test_the_shipped_backstop_adapts_within_one_and_three_months():
    shipped = ScheduleSettings()
    falling, rising = [60], [60]
    for _ in range(4):
        falling.append(adapt_interval(falling[-1], 0.5, shipped))
        rising.append(adapt_interval(rising[-1], 0.95, shipped))
    # A falling score is the performance sensor's to act on: the backstop stops at 30 days
    # instead of shrinking daily towards 3 (which made it a second, more nervous trigger).
    assert falling == [60, 42, 30, 30, 30]
    assert rising == [60, 78, 90, 90, 90]


@pytest.mark.parametrize(
    ("days", "score", "expected"),
    [
        (7, 0.5, 5),  # 4.9 rounds to 5
        (7, 0.95, 9),  # 9.1 rounds to 9
        (14, 0.5, 10),  # 9.8
        (14, 0.95, 18),  # 18.2
        (21, 0.5, 15),  # 14.7
        (21, 0.95, 27),  # 27.3
        (5, 0.1, 4),  # 5 × 0.7 is 3.4999… in binary and still counts as 3.5 → 4
        (5, 0.95, 7),  # 6.5 rounds half up (banker's rounding would give 6)
        (4, 0.1, 3),  # 2.8
        (3, 0.0, 3),  # 2.1 floored at min 3
        (30, 1.0, 30),  # 39 capped at max 30
        (25, 0.91, 30),  # 32.5 capped
        (3, 0.95, 4),  # 3.9
        (7, 0.7, 7),  # boundaries are not strict triggers: 0.7 and 0.9 keep the interval
        (7, 0.9, 7),
        (7, 0.8, 7),
        (7, None, 7),
        (7, float("nan"), 7),
    ],
)
def test_adapt_interval_table(days, score, expected):
    assert adapt_interval(days, score, SETTINGS) == expected


def test_bounds_never_push_the_wrong_way():
    # An interval configured below the minimum is not lengthened by a low score ...
    assert adapt_interval(2, 0.1, SETTINGS) == 2
    # ... and one above the maximum is not shortened by a high score.
    assert adapt_interval(40, 0.99, SETTINGS) == 40


def test_repeated_daily_adaptation_converges_to_the_bounds():
    days = 7
    history = []
    for _ in range(8):
        days = adapt_interval(days, 0.95, SETTINGS)
        history.append(days)
    assert history == [9, 12, 16, 21, 27, 30, 30, 30]
    for _ in range(10):
        days = adapt_interval(days, 0.2, SETTINGS)
    assert days == 3


def test_custom_factors_are_honoured():
    settings = ScheduleSettings(shrink_factor=0.5, grow_factor=2.0, min_days=2, max_days=60)
    assert adapt_interval(7, 0.1, settings) == 4  # 3.5 half up
    assert adapt_interval(7, 0.99, settings) == 14


def test_invalid_schedule_settings_name_the_field():
    with pytest.raises(ConfigError, match="schedule"):
        parse_config({"schedule": {"days": {"prophet": 7}}})
    with pytest.raises(ConfigError, match="must be ≥ 1"):
        parse_config({"schedule": {"days": {"xgboost": 0}}})
    with pytest.raises(ConfigError, match="low_score"):
        parse_config({"schedule": {"low_score": 0.95, "high_score": 0.9}})
    with pytest.raises(ValueError, match="current_days must be ≥ 1, got 0"):
        adapt_interval(0, 0.5, SETTINGS)


def test_schedule_due_on_the_interval_day():
    assert schedule_due(date(2024, 3, 1), 7, date(2024, 3, 7), model="xgboost") is None
    trigger = schedule_due(date(2024, 3, 1), 7, date(2024, 3, 8), model="xgboost")
    assert trigger is not None
    assert (trigger.model, trigger.trigger_type, trigger.severity) == ("xgboost", "schedule", "low")
    assert trigger.evidence == {
        "last_trained_on": "2024-03-01", "interval_days": 7, "days_since": 7, "due_on": "2024-03-08",
    }
    assert "7 days ago" in trigger.reason and "every 7 days" in trigger.reason
    assert trigger.key == "schedule/xgboost/2024-03-08..2024-03-08"
    # Still due (and a new key) the next day if the run did not happen or failed.
    later = schedule_due(date(2024, 3, 1), 7, date(2024, 3, 9), model="xgboost")
    assert later.evidence["days_since"] == 8 and later.key != trigger.key


def test_never_trained_model_is_due_and_unknown_model_is_refused():
    trigger = schedule_due(None, 21, date(2024, 3, 1), model="gnn")
    assert trigger.model == "gnn" and "never been trained" in trigger.reason
    with pytest.raises(ValueError, match="'prophet'"):
        schedule_due(None, 7, date(2024, 3, 1), model="prophet")
