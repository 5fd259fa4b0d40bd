"""A retraining run on the scale-out profile: Postgres storage, MLflow on Postgres, steps on Celery/Redis."""

from __future__ import annotations

import time

import dagster as dg
import pytest

pytestmark = pytest.mark.integration

DRIFT_TAGS = {"aqi/trigger_type": "drift", "aqi/severity": "critical", "aqi/reason": "scale-out test"}


def test_retraining_runs_on_celery_workers_and_records_the_promotion(scaleout):
    assert type(scaleout.instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(scaleout.instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    before = scaleout.champion_version()
    started = time.monotonic()
    run_id = scaleout.submit("retrain_xgboost", tags=DRIFT_TAGS)
    run = scaleout.wait(run_id, timeout=240)
    elapsed = time.monotonic() - started
    assert run.status == dg.DagsterRunStatus.SUCCESS, scaleout.failure_messages(run_id)
    # every step ran in a Celery worker, the model step on its own queue
    on_celery = [r.dagster_event.message for r in scaleout.events(run_id, "ENGINE_EVENT")
                 if "in celery worker" in (r.dagster_event.message or "")]
    assert any("train_models" in m for m in on_celery) and any("training_dataset" in m for m in on_celery)
    # the promotion: the champion alias moved, and the audit record is in the Postgres event log
    after = scaleout.champion_version()
    assert after is not None and after != before
    records = scaleout.instance.fetch_materializations(dg.AssetKey("xgboost_promotion"), limit=5).records
    latest = records[0]
    assert latest.run_id == run_id
    meta = latest.asset_materialization.metadata
    assert meta["action"].value == "promote" and meta["to_version"].value == after
    assert meta["trigger_type"].value == "drift" and meta["reason"].value == "scale-out test"
    print(f"celery retraining run: {elapsed:.1f} s from submit to success, champion v{after}")
