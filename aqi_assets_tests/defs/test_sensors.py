"""Sensors on a real instance (``build_sensor_context``): what fires, with which tags, and what not."""

from __future__ import annotations

import json
from datetime import date, timedelta

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from aqi_assets.core.configuration.store import current_config, next_record, save_record
from aqi_assets.core.data.feature_stats import compute_feature_stats
from aqi_assets.core.data.lake import Lake
from aqi_assets.core.monitoring.live_scoring import score_frame
from aqi_assets.core.monitoring.checks import check_drift
from aqi_assets.core.data.sources.simulated import DriftScenario, SimulatedSource
from aqi_assets.defs.monitoring.sensors import (
    data_drift_sensor,
    retraining_failure_alert,
    observations_arrival_sensor,
    performance_degradation_sensor,
    scheduled_retraining_sensor,
)
from aqi_assets.defs.monitoring.cursors import without_last_check
from aqi_assets.defs.resources import LakeResource, ObservationSourceResource

SERVING_SINCE = date(2024, 3, 1)


def performance_rows(model: str, days: int, recent_factor: float, recent_days: int = 7) -> list[dict]:
    """Daily scores: steady skill for ``days - recent_days`` days, then RMSE × ``recent_factor``."""
    rows = []
    for i in range(days):
        factor = recent_factor if i >= days - recent_days else 1.0
        rows.append({
            "date": pd.Timestamp(SERVING_SINCE + timedelta(days=i)), "model": model, "n": 280,
            "rmse": 15.0 * factor, "mae": 9.0 * factor, "within_20": 0.72 / (factor ** 0.5),
            "aqi_category_accuracy": 0.8, "persistence_rmse": 19.0, "persistence_mae": 10.0,
            "persistence_within_20": 0.67, "persistence_aqi_category_accuracy": 0.78,
            "rmse_skill": 1 - 15.0 * factor / 19.0, "champion_version": "3",
            "serving_since": SERVING_SINCE.isoformat(),
        })
    return rows


def store_scores(lake: Lake, rows: list[dict]) -> None:
    frame = score_frame(rows)
    for day, part in frame.groupby("date"):
        lake.write_frame("model_performance", day.date().isoformat(), part)


def evaluate(sensor, instance, lake, cursor=None, **resources):
    context = dg.build_sensor_context(instance=instance, cursor=cursor,
                                      resources={"lake": LakeResource(root=str(lake.root)), **resources})
    return sensor(context), context


def test_degraded_history_requests_a_tagged_retraining_and_alerts(tmp_path, webhook):
    url, received = webhook
    lake = Lake(tmp_path)
    save_record(lake, next_record(lake, {"operations.alert_webhook_url": url}))
    # the whole 14-day recent window (the default) degraded after a 14-day reference
    store_scores(lake, performance_rows("xgboost", 28, recent_factor=1.4, recent_days=14))
    with dg.instance_for_test() as instance:
        result, context = evaluate(performance_degradation_sensor, instance, lake)
        assert len(result) == 1
        request = result[0]
        assert request.job_name == "retrain_xgboost"
        assert request.tags["aqi/trigger_type"] == "performance"
        assert request.tags["aqi/severity"] == "critical"
        assert request.tags["aqi/model"] == "xgboost"
        assert "rmse" in request.tags["aqi/reason"].lower() or "error" in request.tags["aqi/reason"].lower()
        assert request.run_key.startswith("performance/xgboost/")
        assert request.tags["dagster/max_runtime"] == "3600"
        # the cursor remembers the trigger: the next tick over the same scores is quiet (cooldown)
        again, _ = evaluate(performance_degradation_sensor, instance, lake, cursor=without_last_check(context.cursor))
        assert isinstance(again, dg.SkipReason) and "next check" not in again.skip_message
    assert len(received) == 1
    assert received[0]["metadata"]["event_type"] == "aqi_critical_degradation"
    assert "xgboost live error degraded" in received[0]["text"]


def test_stable_history_skips(tmp_path):
    lake = Lake(tmp_path)
    store_scores(lake, performance_rows("xgboost", 28, recent_factor=1.03))
    with dg.instance_for_test() as instance:
        result, _ = evaluate(performance_degradation_sensor, instance, lake)
        assert isinstance(result, dg.SkipReason) and "no trigger fired" in result.skip_message


def test_model_already_retraining_is_held_back(tmp_path):
    lake = Lake(tmp_path)
    store_scores(lake, performance_rows("xgboost", 28, recent_factor=1.4))
    with dg.instance_for_test() as instance:
        instance.add_run(dg.DagsterRun(job_name="retrain_xgboost", run_id="queued-run-1",
                                       status=dg.DagsterRunStatus.STARTED,
                                       tags={"aqi/retraining": "true", "aqi/model": "xgboost"}))
        result, _ = evaluate(performance_degradation_sensor, instance, lake)
        assert isinstance(result, dg.SkipReason)
        assert "xgboost: a retraining is already queued or running" in result.skip_message


def sketches(lake: Lake, source: SimulatedSource, first: date, last: date) -> None:
    day = first
    while day <= last:
        lake.write_frame("feature_stats", day.isoformat(), compute_feature_stats(source.read_day(day), day))
        day += timedelta(days=1)


def test_step_shift_is_detected_within_two_days(tmp_path):
    shift = date(2024, 4, 20)
    source = SimulatedSource(seed=3, n_stations=12, start=date(2024, 3, 1), end=date(2024, 5, 1),
                             scenarios=[DriftScenario("sensor_recalibration", shift, station="S0005")])
    lake = Lake(tmp_path)
    save_record(lake, next_record(lake, {"drift.rule": "seed"}))  # the window rules: every feature, two days
    with dg.instance_for_test() as instance:
        sketches(lake, source, date(2024, 3, 1), shift - timedelta(days=1))
        quiet, _ = evaluate(data_drift_sensor, instance, lake)
        assert isinstance(quiet, dg.SkipReason)
        sketches(lake, source, shift, shift + timedelta(days=1))  # two days of the new calibration
        result, context = evaluate(data_drift_sensor, instance, lake)
        assert isinstance(result, list) and {r.job_name for r in result} == {"retrain_xgboost", "retrain_lstm", "retrain_gnn"}
        tags = result[0].tags
        assert tags["aqi/trigger_type"] == "drift" and tags["aqi/severity"] == "critical"
        assert "S0005" in tags["aqi/reason"]
        assert json.loads(context.cursor)["last_trigger"] == (shift + timedelta(days=1)).isoformat()


def test_change_of_season_alone_does_not_trigger_with_the_seasonal_reference(tmp_path):
    source = SimulatedSource(seed=11, n_stations=12, start=date(2022, 9, 1), end=date(2024, 12, 1))
    lake = Lake(tmp_path)
    save_record(lake, next_record(lake, {"drift.rule": "seed"}))
    # two earlier autumns-to-winters and the current one
    for year in (2022, 2023, 2024):
        sketches(lake, source, date(year, 10, 1), date(year, 12, 1) if year < 2024 else date(2024, 11, 28))
    sketches(lake, source, date(2024, 9, 1), date(2024, 9, 30))
    with dg.instance_for_test() as instance:
        result, _ = evaluate(data_drift_sensor, instance, lake)
        assert isinstance(result, dg.SkipReason), result
    # the same late-November days against a September reference do see the season change
    contrast = Lake(tmp_path / "contrast")
    sketches(contrast, source, date(2024, 9, 1), date(2024, 9, 30))
    sketches(contrast, source, date(2024, 11, 22), date(2024, 11, 28))
    save_record(contrast, next_record(contrast, {"drift.rule": "seed", "drift.reference": "recent",
                                                 "drift.reference_days": "90"}))
    report, triggers = check_drift(contrast, current_config(contrast))
    assert report.reference_kind == "recent" and len(report.flagged) > 0 and triggers


def test_arrival_sensor_requests_each_new_day_once(tmp_path):
    lake = Lake(tmp_path)
    source = SimulatedSource(n_stations=3, start=date(2024, 1, 1), end=date(2024, 1, 5))
    for d in (date(2024, 1, 1), date(2024, 1, 2)):
        lake.write_frame("observations", d.isoformat(), source.read_day(d))
    with dg.instance_for_test() as instance:
        result, _ = evaluate(observations_arrival_sensor, instance, lake,
                             source=ObservationSourceResource(spec=source.spec))
        assert [r.partition_key for r in result] == ["2024-01-03", "2024-01-04", "2024-01-05"]
        assert [r.run_key for r in result] == ["ingest/2024-01-03", "ingest/2024-01-04", "ingest/2024-01-05"]


def test_schedule_due_after_interval(tmp_path):
    lake = Lake(tmp_path)
    source = SimulatedSource(n_stations=3, start=date(2024, 1, 1), end=date(2024, 1, 20))
    lake.write_frame("observations", "2024-01-20", source.read_day(date(2024, 1, 20)))
    lake.write_json("xgboost_model", None, {"trained_through": "2024-01-12"})
    lake.write_json("lstm_model", None, {"trained_through": "2024-01-12"})
    lake.write_json("retraining_schedule", None, {"as_of": "2024-01-20", "models": {
        "xgboost": {"interval_days": 7}, "lstm": {"interval_days": 14}}})
    with dg.instance_for_test() as instance:
        result, _ = evaluate(scheduled_retraining_sensor, instance, lake)
        assert [r.job_name for r in result] == ["retrain_xgboost"]
        assert result[0].tags["aqi/trigger_type"] == "schedule"
        assert result[0].run_key == "schedule/xgboost/2024-01-20..2024-01-20"


def test_check_interval_is_read_from_the_config_in_force_on_every_tick(tmp_path, monkeypatch):
    """A check happens when operations.check_interval_minutes has passed since the last one; a
    change of the setting applies at the next tick (no reload)."""
    import aqi_assets.defs.monitoring.interval as interval

    lake = Lake(tmp_path)
    store_scores(lake, performance_rows("xgboost", 28, recent_factor=1.0))
    clock = [1_000_000.0]
    monkeypatch.setattr(interval.time, "time", lambda: clock[0])
    with dg.instance_for_test() as instance:
        first, context = evaluate(performance_degradation_sensor, instance, lake)
        assert "next check" not in first.skip_message and json.loads(context.cursor)["last_check"] == clock[0]
        clock[0] += 10 * 60
        waiting, _ = evaluate(performance_degradation_sensor, instance, lake, cursor=context.cursor)
        assert waiting.skip_message.startswith("next check at") and "check_interval_minutes = 30" in waiting.skip_message
        save_record(lake, next_record(lake, {"operations.check_interval_minutes": 5}))
        checked, later = evaluate(performance_degradation_sensor, instance, lake, cursor=context.cursor)
        assert "next check" not in checked.skip_message and json.loads(later.cursor)["last_check"] == clock[0]


@pytest.mark.parametrize("switch", ["env", "config"])
def test_automated_retraining_off_stops_every_trigger_sensor(tmp_path, monkeypatch, switch):
    lake = Lake(tmp_path)
    store_scores(lake, performance_rows("xgboost", 28, recent_factor=1.4, recent_days=14))  # would trigger
    if switch == "env":
        monkeypatch.setenv("AQI_AUTOMATED_RETRAINING_ENABLED", "false")
        why = "AQI_AUTOMATED_RETRAINING_ENABLED=false"
    else:
        save_record(lake, next_record(lake, {"operations.automated_retraining": False}))
        why = "operations.automated_retraining = false"
    with dg.instance_for_test() as instance:
        for sensor in (performance_degradation_sensor, data_drift_sensor, scheduled_retraining_sensor):
            result, context = evaluate(sensor, instance, lake)
            assert isinstance(result, dg.SkipReason), sensor.name
            assert why in result.skip_message and "manual retraining still works" in result.skip_message
            assert context.cursor is None  # nothing was checked, so nothing is remembered
        monkeypatch.delenv("AQI_AUTOMATED_RETRAINING_ENABLED", raising=False)
        if switch == "config":
            save_record(lake, next_record(lake, {"operations.automated_retraining": True}))
        result, _ = evaluate(performance_degradation_sensor, instance, lake)
        assert [r.job_name for r in result] == ["retrain_xgboost"]


def test_drift_retraining_failure_and_sensor_error_alerts_reach_the_webhook(tmp_path, webhook):
    """The alert kinds of the trigger side, each posted to a real local webhook (system_error: test_health)."""
    url, received = webhook
    shift = date(2024, 4, 20)
    source = SimulatedSource(seed=3, n_stations=12, start=date(2024, 3, 1), end=date(2024, 5, 1),
                             scenarios=[DriftScenario("sensor_recalibration", shift, station="S0005")])
    lake = Lake(tmp_path / "lake")
    save_record(lake, next_record(lake, {"operations.alert_webhook_url": url, "drift.rule": "seed"}))  # fires in 2 days
    sketches(lake, source, date(2024, 3, 1), shift + timedelta(days=1))
    with dg.instance_for_test() as instance:
        result, _ = evaluate(data_drift_sensor, instance, lake)
        assert isinstance(result, list) and result
        # a sensor that cannot read its source fails its tick and says so
        with pytest.raises(Exception):
            evaluate(observations_arrival_sensor, instance, lake,
                     source=ObservationSourceResource(spec=f"csv:{tmp_path / 'no_such_dir'}"))
        # a retraining run that fails
        @dg.op
        def broken():
            raise RuntimeError("disk full while writing the candidate")

        @dg.job(name="retrain_xgboost", tags={"aqi/model": "xgboost", "aqi/trigger_type": "drift"})
        def failing():
            broken()

        run = failing.execute_in_process(instance=instance, raise_on_error=False)
        failure = next(e for e in run.all_events if e.event_type_value == "PIPELINE_FAILURE")
        context = dg.build_run_status_sensor_context(
            sensor_name="retraining_failure_alert", dagster_instance=instance,
            dagster_run=instance.get_run_by_id(run.run_id), dagster_event=failure).for_run_failure()
        retraining_failure_alert(context, lake=LakeResource(root=str(lake.root)))
    kinds = [r["metadata"]["event_type"] for r in received]
    assert kinds == ["aqi_drift_detected", "aqi_sensor_error", "aqi_retraining_failed"], kinds
    drift, error, failed = received
    assert "S0005" in drift["text"]
    assert "observations_arrival_sensor" in error["text"] and "no_such_dir" in error["text"]
    assert f"retraining run {run.run_id[:8]} failed" in failed["text"]
