"""The CLI's reading of GraphQL answers: run records, rates, ``key=value`` arguments (no server)."""

from __future__ import annotations

import pytest

from aqi_assets.cli.commands import is_trigger_sensor, parse_assignments
from aqi_assets.cli.graphql import ApiError, metadata_dict
from aqi_assets.cli.runs import retraining_metrics, run_record, tick_metrics


def _run(run_id: str, status: str, start: float | None = 100.0, end: float | None = 160.0, **tags: str) -> dict:
    return {"runId": run_id, "jobName": "retrain_xgboost", "status": status, "creationTime": 90.0,
            "startTime": start, "endTime": end, "tags": [{"key": k, "value": v} for k, v in tags.items()]}


def _gate(name: str, success: bool, description: str = "") -> dict:
    return {"__typename": "AssetCheckEvaluationEvent",
            "evaluation": {"checkName": name, "success": success, "description": description,
                           "assetKey": {"path": ["xgboost_model"]}}}


PROMOTION = {"__typename": "MaterializationEvent", "assetKey": {"path": ["xgboost_promotion"]},
             "metadataEntries": [{"label": "action", "text": "promote"}, {"label": "from_version", "text": "3"},
                                 {"label": "to_version", "text": "4"}, {"label": "holdout_rmse", "floatValue": 17.5}]}


def test_run_record_reads_trigger_gates_promotion_and_error():
    promoted = run_record(_run("a", "SUCCESS", **{"aqi/trigger_type": "drift", "aqi/severity": "critical",
                                                   "aqi/reason": "PM2.5 mean shift"}),
                          [_gate("rmse_within_limit", True), _gate("beats_persistence", True), PROMOTION])
    assert (promoted["model"], promoted["trigger_type"], promoted["severity"]) == ("xgboost", "drift", "critical")
    assert promoted["gates_passed"] is True and promoted["duration_seconds"] == 60.0
    assert promoted["promotion"]["from_version"] == "3" and promoted["promotion"]["to_version"] == "4"

    failure = {"__typename": "ExecutionStepFailureEvent", "stepKey": "xgboost_promotion", "error": {"message": "x"},
               "failureMetadata": {"description": "refusing to promote xgboost v5: gate(s) rmse_within_limit\nmore"}}
    blocked = run_record(_run("b", "FAILURE"), [_gate("rmse_within_limit", False, "RMSE 31 > limit 25"), failure])
    assert blocked["model"] == "xgboost" and blocked["trigger_type"] == "manual"
    assert blocked["gates_passed"] is False and blocked["gate_notes"] == {"rmse_within_limit": "RMSE 31 > limit 25"}
    assert blocked["promotion"] is None
    assert blocked["error"] == "refusing to promote xgboost v5: gate(s) rmse_within_limit"
    check_failure = {"__typename": "ExecutionStepFailureEvent", "stepKey": "xgboost_gates", "failureMetadata": None,
                     "error": {"message": "DagsterAssetCheckFailedError: 1 blocking asset check failed with ERROR"}}
    stopped = run_record(_run("c", "FAILURE"), [_gate("rmse_within_limit", False, "RMSE 31 > limit 25"), check_failure])
    assert stopped["error"] == "gate rmse_within_limit failed: RMSE 31 > limit 25"


def test_rates_count_finished_runs_only():
    records = [run_record(_run("a", "SUCCESS"), [PROMOTION]), run_record(_run("b", "SUCCESS", 0.0, 30.0), []),
               run_record(_run("c", "FAILURE", 10.0, 40.0), []), run_record(_run("d", "STARTED", 10.0, None), [])]
    figures = retraining_metrics(records)
    assert (figures["retraining_runs"], figures["finished_runs"], figures["successful_runs"]) == (4, 3, 2)
    assert figures["retraining_success_rate"] == pytest.approx(2 / 3)
    assert figures["promotion_rate"] == pytest.approx(1 / 3)
    assert figures["average_duration_seconds"] == pytest.approx((60 + 30 + 30) / 3)
    assert retraining_metrics([])["retraining_success_rate"] is None

    ticks = [{"status": s} for s in ("SKIPPED", "SUCCESS", "FAILURE", "STARTED")]
    checks = tick_metrics([{"name": "data_drift_sensor", "sensorState": {"ticks": ticks}}])
    assert (checks["trigger_checks"], checks["failed_checks"]) == (3, 1)
    assert checks["trigger_check_success_rate"] == pytest.approx(2 / 3)
    assert checks["per_sensor"]["data_drift_sensor"]["fired"] == 1


def test_assignments_metadata_and_trigger_sensors():
    assert parse_assignments(["gates.max_rmse=22", " schedule.days.lstm = 10 "]) == {
        "gates.max_rmse": "22", "schedule.days.lstm": "10"}
    assert parse_assignments(["drift.note=a=b"]) == {"drift.note": "a=b"}
    for bad in ("gates.max_rmse", "=3"):
        with pytest.raises(ApiError, match="expected key=value"):
            parse_assignments([bad])
    assert metadata_dict([{"label": "config", "jsonString": '{"a": 1}'}, {"label": "n", "intValue": 3}]) == {
        "config": {"a": 1}, "n": 3}
    retraining = {"sensorType": "STANDARD", "targets": [{"pipelineName": "retrain_gnn"}]}
    ingestion = {"sensorType": "STANDARD", "targets": [{"pipelineName": "ingest_day"}]}
    alert = {"sensorType": "RUN_STATUS", "targets": [{"pipelineName": "retrain_gnn"}]}
    assert [is_trigger_sensor(s) for s in (retraining, ingestion, alert)] == [True, False, False]
