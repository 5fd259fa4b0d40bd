"""Performance-degradation rules, the performance score, manual triggers and the Trigger record."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from aqi_assets.core.configuration.config import ConfigError, PerformanceSettings, parse_config
from aqi_assets.core.monitoring.triggers import (
    PERFORMANCE_COLUMNS,
    Trigger,
    evaluate_performance,
    manual_trigger,
    performance_score,
)

DEPLOYED = date(2024, 9, 1)
#: The rules on a 7-day recent window with a 3-day cooldown (what these cases are written for).
WINDOWS = {"recent_days": 7, "min_recent_days": 5, "cooldown_days": 3}
SKILL = PerformanceSettings(rule="skill", **WINDOWS)  # relative to persistence
RAW = PerformanceSettings(rule="raw", **WINDOWS)


def history(
    days: int = 60,
    model_factor=lambda i: 1.0,
    persistence_factor=lambda i: 1.0,
    accuracy_factor=lambda i: 1.0,
    seed: int = 0,
    model: str = "xgboost",
) -> pd.DataFrame:
    """Daily live scores from DEPLOYED: RMSE 17.1 vs persistence 19.4, 70 % vs 67.5 % within 20 %.

    ``*_factor(i)`` scale day ``i``'s values; every day gets ±2 % multiplicative noise.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(days):
        noise = 1.0 + 0.02 * rng.standard_normal(3)
        season = persistence_factor(i)
        rmse = 17.1 * season * model_factor(i) * noise[0]
        p_rmse = 19.4 * season * noise[1]
        within = min(0.70 * accuracy_factor(i) * noise[2], 1.0)
        rows.append({
            "date": pd.Timestamp(DEPLOYED + timedelta(days=i)), "model": model, "rmse": rmse,
            "mae": 0.55 * rmse, "within_20": within, "aqi_category_accuracy": 0.8, "n": 288,
            "persistence_rmse": p_rmse, "persistence_mae": 0.55 * p_rmse, "persistence_within_20": 0.675,
        })  # fmt: skip
    frame = pd.DataFrame(rows)
    assert tuple(frame.columns) == PERFORMANCE_COLUMNS
    return frame


def step_after(day: int, factor: float):
    return lambda i: factor if i >= day else 1.0


TODAY = DEPLOYED + timedelta(days=59)


@pytest.mark.parametrize("settings", [RAW, SKILL], ids=["raw", "skill"])
def test_stable_history_gives_no_trigger(settings):
    for seed in range(5):
        assert evaluate_performance(history(seed=seed), "xgboost", DEPLOYED, settings, TODAY) == []


@pytest.mark.parametrize("settings", [RAW, SKILL], ids=["raw", "skill"])
@pytest.mark.parametrize(("factor", "severity"), [(1.20, "high"), (1.35, "critical")])
def test_rmse_degradation_severity(settings, factor, severity):
    frame = history(model_factor=step_after(45, factor))
    (trigger,) = evaluate_performance(frame, "xgboost", DEPLOYED, settings, TODAY)
    assert (trigger.model, trigger.trigger_type, trigger.severity) == ("xgboost", "performance", severity)
    assert trigger.evidence["error_increase"] == pytest.approx(factor - 1.0, abs=0.03)
    assert trigger.evidence["recent_window"] == ["2024-10-24", "2024-10-30"]
    assert trigger.evidence["reference_window"] == ["2024-09-01", "2024-09-14"]
    assert trigger.key == "performance/xgboost/2024-10-24..2024-10-30"
    assert f"{factor - 1:+.0%}" in trigger.reason


@pytest.mark.parametrize(("factor", "severity"), [(0.88, "high"), (0.75, "critical"), (0.95, None)])
def test_accuracy_drop_severity(factor, severity):
    frame = history(accuracy_factor=step_after(45, factor))
    triggers = evaluate_performance(frame, "xgboost", DEPLOYED, SKILL, TODAY)
    assert [t.severity for t in triggers] == ([severity] if severity else [])
    if triggers:
        assert triggers[0].evidence["accuracy_drop"] == pytest.approx(1 - factor, abs=0.02)


def test_seasonal_rise_fires_raw_rule_but_not_skill_rule():
    # Autumn into winter: every error (the model's and persistence's) rises 50 %, skill is unchanged.
    winter = lambda i: 1.0 + 0.5 * min(max(i - 20, 0) / 30, 1.0)  # noqa: E731
    frame = history(persistence_factor=winter)
    (raw,) = evaluate_performance(frame, "xgboost", DEPLOYED, RAW, TODAY)
    assert raw.severity == "critical"
    assert raw.evidence["error_increase"] == pytest.approx(0.5, abs=0.03)
    assert evaluate_performance(frame, "xgboost", DEPLOYED, SKILL, TODAY) == []
    assert performance_score(frame, "xgboost", DEPLOYED, SKILL, TODAY) > 0.9
    assert performance_score(frame, "xgboost", DEPLOYED, RAW, TODAY) == pytest.approx(1 / 1.5, abs=0.03)


def test_skill_rule_still_sees_a_stale_model_in_winter():
    winter = lambda i: 1.0 + 0.5 * min(max(i - 20, 0) / 30, 1.0)  # noqa: E731
    frame = history(persistence_factor=winter, model_factor=step_after(45, 1.25))
    (trigger,) = evaluate_performance(frame, "xgboost", DEPLOYED, SKILL, TODAY)
    assert trigger.severity == "high"
    assert trigger.evidence["error_recent"] == pytest.approx(17.1 / 19.4 * 1.25, rel=0.03)


def test_too_few_days_or_overlapping_windows_give_no_trigger():
    degraded = history(model_factor=step_after(0, 1.5))
    # Recent window would overlap the 14 reference days: nothing to compare yet.
    assert evaluate_performance(degraded, "xgboost", DEPLOYED, RAW, DEPLOYED + timedelta(days=16)) == []
    # Only 4 scored days in the last 7 (minimum 5).
    sparse = history(model_factor=step_after(45, 1.5))
    sparse = sparse[~sparse["date"].isin(pd.date_range(TODAY - timedelta(days=6), TODAY - timedelta(days=4)))]
    assert evaluate_performance(sparse, "xgboost", DEPLOYED, RAW, TODAY) == []
    # Another model's rows do not count.
    assert evaluate_performance(history(model="lstm", model_factor=step_after(45, 1.5)), "xgboost", DEPLOYED, RAW, TODAY) == []


def test_cooldown_suppresses_repeats():
    frame = history(model_factor=step_after(45, 1.5))
    assert evaluate_performance(frame, "xgboost", DEPLOYED, RAW, TODAY, last_triggered_on=TODAY - timedelta(days=2)) == []
    again = evaluate_performance(frame, "xgboost", DEPLOYED, RAW, TODAY, last_triggered_on=TODAY - timedelta(days=3))
    assert [t.severity for t in again] == ["critical"]


def test_performance_score_numbers():
    assert performance_score(history(), "xgboost", DEPLOYED, SKILL, TODAY) == pytest.approx(1.0, abs=0.03)
    worse = history(model_factor=step_after(45, 1.2))
    assert performance_score(worse, "xgboost", DEPLOYED, SKILL, TODAY) == pytest.approx(1 / 1.2, abs=0.03)
    less_accurate = history(accuracy_factor=step_after(45, 0.6))
    assert performance_score(less_accurate, "xgboost", DEPLOYED, SKILL, TODAY) == pytest.approx(0.6, abs=0.03)
    assert performance_score(history(days=10), "xgboost", DEPLOYED, SKILL, DEPLOYED + timedelta(days=9)) is None


def test_performance_settings_validation_names_the_field():
    with pytest.raises(ConfigError, match="critical_rmse_increase"):
        parse_config({"performance": {"rmse_increase": 0.4}})
    with pytest.raises(ConfigError, match="min_recent_days"):
        parse_config({"performance": {"recent_days": 7, "min_recent_days": 9}})
    with pytest.raises(ConfigError, match="performance.rule"):
        parse_config({"performance": {"rule": "fancy"}})


def test_manual_trigger_validates_and_records():
    at = datetime(2024, 3, 1, 9, 30)
    trigger = manual_trigger("lstm", "  new stations added to the network ", "high", at)
    assert (trigger.model, trigger.trigger_type, trigger.severity) == ("lstm", "manual", "high")
    assert trigger.reason == "new stations added to the network"
    assert trigger.key == "manual/lstm/2024-03-01T09:30:00"
    assert trigger.tags() == {
        "aqi/trigger_type": "manual", "aqi/severity": "high",
        "aqi/reason": "new stations added to the network", "aqi/model": "lstm",
    }  # fmt: skip
    with pytest.raises(ValueError, match="model 'prophet' is not one of"):
        manual_trigger("prophet", "why not", "high", at)
    with pytest.raises(ValueError, match="severity 'urgent' is not one of"):
        manual_trigger("lstm", "why not", "urgent", at)
    with pytest.raises(ValueError, match="reason must be a non-empty"):
        manual_trigger("lstm", "   ", "high", at)


def test_trigger_record_checks_type_and_cuts_long_reasons():
    with pytest.raises(ValueError, match="trigger_type 'hunch'"):
        Trigger("xgboost", "hunch", "low", "because", {}, datetime(2024, 1, 1))
    long = Trigger("*", "drift", "medium", "x" * 500, {"n": 1}, datetime(2024, 1, 1), (date(2024, 1, 1), date(2024, 1, 7)))
    tag = long.tags()["aqi/reason"]
    assert len(tag) == 200 and tag.endswith("…")
    assert long.key == "drift/*/2024-01-01..2024-01-07"
    assert long.rank == 1
    # Frozen and hashable (evidence is not part of equality or the hash).
    same = Trigger("*", "drift", "medium", "x" * 500, {"n": 2}, datetime(2024, 1, 1), (date(2024, 1, 1), date(2024, 1, 7)))
    assert long == same and len({long, same}) == 1
