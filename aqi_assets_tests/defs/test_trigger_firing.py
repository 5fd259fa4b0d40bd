"""A trigger counts as fired (cursor, cooldown, reference reset) only when its run was requested."""

from __future__ import annotations

import json
from datetime import date, timedelta

import dagster as dg

from aqi_assets.core.configuration.store import next_record, save_record
from aqi_assets.core.data.lake import Lake
from aqi_assets.core.data.sources.simulated import DriftScenario, SimulatedSource
from aqi_assets.defs.monitoring.cursors import without_last_check
from aqi_assets.defs.monitoring.sensors import data_drift_sensor, performance_degradation_sensor
from aqi_assets_tests.defs.test_sensors import evaluate, performance_rows, sketches, store_scores


def busy(instance: dg.DagsterInstance, *models: str) -> None:
    for model in models:
        instance.add_run(dg.DagsterRun(job_name=f"retrain_{model}", run_id=f"running-{model}",
                                       status=dg.DagsterRunStatus.STARTED,
                                       tags={"aqi/retraining": "true", "aqi/model": model}))


def test_held_performance_trigger_is_not_written_to_the_cursor(tmp_path):
    lake = Lake(tmp_path)
    store_scores(lake, performance_rows("xgboost", 28, recent_factor=1.4, recent_days=14))
    with dg.instance_for_test() as instance:
        busy(instance, "xgboost")
        held, context = evaluate(performance_degradation_sensor, instance, lake)
        assert isinstance(held, dg.SkipReason) and "held" in held.skip_message
        assert json.loads(context.cursor or "{}").get("last_trigger", {}) == {}
    # The run in flight failed (nothing is in flight now): the next tick requests at once, no cooldown.
    with dg.instance_for_test() as instance:
        result, context = evaluate(performance_degradation_sensor, instance, lake, cursor=without_last_check(context.cursor))
        assert [r.job_name for r in result] == ["retrain_xgboost"]
        assert json.loads(context.cursor)["last_trigger"] == {"xgboost": "2024-03-28"}


def test_held_drift_trigger_neither_starts_cooldown_nor_resets_references(tmp_path):
    shift = date(2024, 4, 20)
    source = SimulatedSource(seed=3, n_stations=12, start=date(2024, 3, 1), end=date(2024, 5, 1),
                             scenarios=[DriftScenario("sensor_recalibration", shift, station="S0005")])
    lake = Lake(tmp_path)
    sketches(lake, source, date(2024, 3, 1), shift + timedelta(days=1))
    # the window rules retrain on every feature within two days of this recalibration
    save_record(lake, next_record(lake, {"drift.rule": "seed"}))
    with dg.instance_for_test() as instance:
        busy(instance, "xgboost", "lstm", "gnn")
        held, context = evaluate(data_drift_sensor, instance, lake)
        assert isinstance(held, dg.SkipReason) and "already queued or running" in held.skip_message
        cursor = json.loads(context.cursor or "{}")
        assert cursor.get("last_trigger") is None and not cursor.get("resets")
    with dg.instance_for_test() as instance:
        result, context = evaluate(data_drift_sensor, instance, lake, cursor=without_last_check(context.cursor))
        assert {r.job_name for r in result} == {"retrain_xgboost", "retrain_lstm", "retrain_gnn"}
        cursor = json.loads(context.cursor)
        assert cursor["last_trigger"] == (shift + timedelta(days=1)).isoformat()
        reset = {(station, feature) for station, feature, _ in cursor["resets"]}
        assert reset and {station for station, _ in reset} == {"S0005"}
        assert all(day == (shift + timedelta(days=2)).isoformat() for *_, day in cursor["resets"])


def test_flat_line_alerts_once_and_requests_no_run(tmp_path, webhook):
    import pandas as pd

    from aqi_assets_tests.core.monitoring.test_drift_state import FIRST, small_network_stats

    url, received = webhook
    stats = small_network_stats(days=51, seed=6)
    day = FIRST + timedelta(days=50)
    rows = (stats["station"] == "T4") & (stats["feature"] == "pm25") & (stats["date"] >= pd.Timestamp(day - timedelta(days=1)))
    stats.loc[rows, "sum_sq"] = stats.loc[rows, "sum"] ** 2 / stats.loc[rows, "count"]
    lake = Lake(tmp_path)
    for d, part in stats.groupby("date"):
        lake.write_frame("feature_stats", d.date().isoformat(), part)
    save_record(lake, next_record(lake, {"drift.rule": "sequential", "operations.alert_webhook_url": url}))
    with dg.instance_for_test() as instance:
        result, context = evaluate(data_drift_sensor, instance, lake)
        assert isinstance(result, dg.SkipReason) and "T4" in result.skip_message
        again, _ = evaluate(data_drift_sensor, instance, lake, cursor=without_last_check(context.cursor))
        assert isinstance(again, dg.SkipReason)
    assert [m["metadata"]["event_type"] for m in received] == ["aqi_sensor_error"]
    assert json.loads(context.cursor)["fault_alerted"] == [["T4", "pm25", day.isoformat()]]
