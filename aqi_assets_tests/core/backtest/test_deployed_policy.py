"""The backtest's ``deployed`` policy decides as the platform does: adaptive schedule ∪ performance ∪ drift."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from aqi_assets.core.backtest.policies import PolicyState, decide, policy_from_name
from aqi_assets.core.configuration.config import RetrainingConfig, ScheduleSettings
from aqi_assets.core.monitoring.triggers import PERFORMANCE_COLUMNS
from aqi_assets_tests.core.monitoring.test_drift_state import small_network_stats

TRAINED = date(2024, 3, 31)


def scores(days: int, recent_factor: float = 1.0, recent_days: int = 14) -> pd.DataFrame:
    rows = []
    for i in range(days):
        f = recent_factor if i >= days - recent_days else 1.0
        rows.append({"date": pd.Timestamp(TRAINED + timedelta(days=1 + i)), "model": "xgboost", "rmse": 15.0 * f,
                     "mae": 9.0 * f, "within_20": 0.72 / f, "aqi_category_accuracy": 0.8, "n": 280,
                     "persistence_rmse": 19.0, "persistence_mae": 10.0, "persistence_within_20": 0.67})
    return pd.DataFrame(rows, columns=list(PERFORMANCE_COLUMNS))


def test_deployed_policy_is_the_union_the_platform_runs():
    config = RetrainingConfig()
    deployed = policy_from_name("deployed", config)
    assert deployed.schedule == config.schedule and deployed.performance == config.performance
    assert deployed.drift == config.drift_in_force() and deployed.kind == "triggered"
    schedule = policy_from_name("schedule", config)
    assert schedule.kind == "adaptive" and schedule.performance is None and schedule.drift is None


def test_adaptive_schedule_starts_at_the_configured_days_and_adapts_from_the_score():
    assert policy_from_name("schedule").schedule.days["xgboost"] == 60  # the shipped default: a backstop
    seed = RetrainingConfig(schedule=ScheduleSettings(days={"xgboost": 7, "lstm": 14, "gnn": 21}, min_days=3,
                                                      max_days=30))
    policy = policy_from_name("schedule", seed)
    state = PolicyState(TRAINED)
    # No score yet (too few days since deployment): the configured 7 days.
    assert decide(policy, state, TRAINED + timedelta(days=6), scores(6)) == []
    (due,) = decide(policy, state, TRAINED + timedelta(days=7), scores(7))
    assert due.trigger_type == "schedule" and state.interval_days == 7
    # A model holding its accuracy (score 1.0 > 0.9): the interval grows 7 → 9 → 12 each daily adaptation.
    steady = PolicyState(TRAINED, interval_days=7)
    assert decide(policy, steady, TRAINED + timedelta(days=28), scores(28))  # 28 days since training: due
    assert steady.interval_days == 9
    decide(policy, steady, TRAINED + timedelta(days=29), scores(29))
    assert steady.interval_days == 12
    # A degraded model (score < 0.7): 7 → 5 days.
    worse = PolicyState(TRAINED, interval_days=7)
    decide(policy, worse, TRAINED + timedelta(days=28), scores(28, recent_factor=1.6))
    assert worse.interval_days == 5


def test_deployed_policy_retrains_on_performance_before_the_schedule_is_due():
    policy = policy_from_name("deployed")
    state = PolicyState(TRAINED, interval_days=30)
    sketches = small_network_stats(days=20)  # no sketches of the current week: drift has nothing to say
    found = decide(policy, state, TRAINED + timedelta(days=28), scores(28, recent_factor=1.4), sketches)
    assert [t.trigger_type for t in found] == ["performance"]
    assert state.last_performance_trigger == TRAINED + timedelta(days=28)


def test_deployed_policy_replays_end_to_end_on_a_six_station_city(tmp_path, capsys):
    import json

    from aqi_assets.cli.main import main

    out = tmp_path / "bt"
    code = main(["backtest", "--source", "simulated:seed=3,stations=6,start=2024-01-01,end=2024-05-10",
                 "--start", "2024-02-01", "--end", "2024-05-05", "--window-days", "21", "--preset", "fast",
                 "--hyper", "nthread=1", "--hyper", "n_estimators=20", "--policies", "never,schedule,deployed",
                 "--out", str(out), "--quiet", "--config", "defaults"])
    assert code == 0, capsys.readouterr().out
    record = json.loads((out / "backtest.json").read_text())
    # A model holding its accuracy: the 60-day backstop grows to its 90-day longest and is due
    # 90 days after the initial training (Jan 31).
    (scheduled,) = record["policies"]["schedule"]["retrain_days"]
    assert (scheduled["decided_on"], scheduled["trigger"]) == ("2024-04-30", "schedule")
    assert "every 90 days" in scheduled["reason"]
    # Deployed, the performance sensor acts first, so the backstop never comes due.
    deployed = record["policies"]["deployed"]
    assert deployed["retrains"] >= 1
    assert {t for r in deployed["retrain_days"] for t in r["trigger"].split("+")} <= {"performance", "drift"}
