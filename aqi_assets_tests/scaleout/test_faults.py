"""Faults on the scale-out stack; each one must lose nothing and leave the champion alone.

- MLflow unreachable when the model step starts: the step fails at once naming the MLflow
  resource and its URI; nothing is registered; the champion is unchanged.
- The run worker process SIGKILLed mid-training: the code server reports the kill and the run
  is marked failed (run monitoring's max runtime is the backstop); the pool slot the killed
  step held is freed by run monitoring, and the next trigger still retrains and promotes.
- A Celery worker process lost mid-step: the run fails (WorkerLostError) within a bounded
  wait, never hangs; the champion is unchanged.
- The Redis broker down at launch: the run fails at once naming the broker; no step ran,
  no model version was registered, the champion is unchanged.
"""

from __future__ import annotations

import os
import signal
import time

import dagster as dg
import psutil
import pytest

from aqi_assets_tests.scaleout.conftest import closed_port

pytestmark = pytest.mark.integration

TAGS = {"aqi/trigger_type": "drift", "aqi/severity": "high", "aqi/reason": "fault test"}


def _model_versions(stack) -> int:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=stack.mlflow_uri, registry_uri=stack.mlflow_uri)
    return len(client.search_model_versions("name='aqi_predictor_xgboost'"))


def _ensure_champion(stack) -> str:
    if stack.champion_version() is None:
        run_id = stack.submit("retrain_xgboost", tags=TAGS)
        assert stack.wait(run_id, timeout=240).status == dg.DagsterRunStatus.SUCCESS, stack.failure_messages(run_id)
    return stack.champion_version()


def _wait_for_event(stack, run_id: str, event_type: str, step_key: str, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for r in stack.events(run_id, event_type):
            if r.step_key == step_key:
                return r
        time.sleep(0.3)
    raise AssertionError(f"no {event_type} of {step_key} in run {run_id} after {timeout:.0f} s")


def test_broker_down_at_launch_fails_clearly_and_records_nothing(scaleout):
    champion, versions = scaleout.champion_version(), _model_versions(scaleout)
    down = f"redis://127.0.0.1:{closed_port()}/0"
    started = time.monotonic()
    run_id = scaleout.submit("retrain_xgboost", tags=TAGS, run_config={"execution": {"config": {"broker": down}}})
    run = scaleout.wait(run_id, timeout=120)
    elapsed = time.monotonic() - started
    assert run.status == dg.DagsterRunStatus.FAILURE
    message = scaleout.failure_messages(run_id)
    assert "Celery broker" in message and down in message and "unreachable" in message, message
    assert not scaleout.events(run_id, "STEP_START", "ASSET_MATERIALIZATION")
    assert scaleout.champion_version() == champion and _model_versions(scaleout) == versions
    print(f"broker down: run failed {elapsed:.1f} s after submit")


def test_mlflow_unreachable_is_retried_with_backoff_then_fails_and_keeps_the_champion(scaleout):
    """MLflow down when the model step starts: the step body raises ``MlflowUnavailable``, the
    step's RetryPolicy retries it with exponential backoff (the test suite sets a 0.5 s first
    delay), then the run fails naming MLflow and its URI. Nothing is registered; the champion stays.
    """
    champion, versions = _ensure_champion(scaleout), _model_versions(scaleout)
    dead = f"http://127.0.0.1:{closed_port()}"
    run_config = {"resources": {"mlflow": {"config": {"mlflow_tracking_uri": dead}},
                                "mlflow_registry": {"config": {"tracking_uri": dead}}}}
    started = time.monotonic()
    run_id = scaleout.submit("retrain_xgboost", tags=TAGS, run_config=run_config)
    run = scaleout.wait(run_id, timeout=180)
    elapsed = time.monotonic() - started
    assert run.status == dg.DagsterRunStatus.FAILURE
    text = scaleout.failure_messages(run_id)
    assert f"MLflow tracking server at {dead} is unreachable" in text and "still failing after retries" in text, text
    retries = [r for r in scaleout.events(run_id, "STEP_UP_FOR_RETRY") if r.step_key == "train_models"]
    assert len(retries) == 3, text
    assert not [r for r in scaleout.events(run_id, "STEP_START") if r.step_key == "xgboost_promotion"]
    assert scaleout.champion_version() == champion and _model_versions(scaleout) == versions
    print(f"mlflow unreachable: 3 retries with backoff, run failed {elapsed:.1f} s after submit")


def _run_worker_pid(stack, run_id: str) -> int:
    """The run worker's pid, from the run's 'Started process for run (pid: N).' engine event."""
    import re

    for r in stack.events(run_id, "ENGINE_EVENT"):
        found = re.search(r"Started process for run \(pid: (\d+)\)", r.dagster_event.message or "")
        if found:
            return int(found.group(1))
    raise AssertionError(f"no run worker process for {run_id}")


def test_run_worker_killed_mid_run_is_failed_by_monitoring_and_next_trigger_works(scaleout):
    champion = _ensure_champion(scaleout)
    started = time.monotonic()
    run_id = scaleout.submit("retrain_xgboost", tags={**TAGS, "dagster/max_runtime": "300"})
    _wait_for_event(scaleout, run_id, "STEP_START", "train_models", timeout=180)  # mid-training
    os.kill(_run_worker_pid(scaleout, run_id), signal.SIGKILL)
    killed_at = time.monotonic()
    run = scaleout.wait(run_id, timeout=120)
    detected = time.monotonic() - killed_at
    assert run.status == dg.DagsterRunStatus.FAILURE
    text = scaleout.failure_messages(run_id)
    assert "SIGKILL" in text and "marked as failed" in text, text
    assert scaleout.champion_version() == champion  # the killed run never reached its promotion
    next_id = scaleout.submit("retrain_xgboost", tags=TAGS)
    nxt = scaleout.wait(next_id, timeout=240)
    assert nxt.status == dg.DagsterRunStatus.SUCCESS, scaleout.failure_messages(next_id)
    assert scaleout.champion_version() != champion
    print(f"run worker killed: run marked failed {detected:.1f} s after the kill; next trigger promoted "
          f"({time.monotonic() - started:.1f} s in all)")


def _celery_pool_children(stack, name: str = "worker") -> list[psutil.Process]:
    root = psutil.Process(stack.procs[name].pid)
    celery = [p for p in root.children(recursive=True) if "celery" in " ".join(p.cmdline())]
    parents = {p.pid for p in celery}
    return [p for p in celery if p.ppid() in parents]


def test_celery_worker_lost_mid_step_fails_the_run_without_hanging(scaleout):
    champion = _ensure_champion(scaleout)
    run_id = scaleout.submit("retrain_xgboost", tags=TAGS)
    _wait_for_event(scaleout, run_id, "STEP_START", "train_models", timeout=180)
    children = _celery_pool_children(scaleout)
    assert children, "no Celery pool process found"
    for child in children:
        child.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    run = scaleout.wait(run_id, timeout=120)  # the bound: fails, or retries to an end, never hangs
    detected = time.monotonic() - killed_at
    assert run.status == dg.DagsterRunStatus.FAILURE
    assert "worker" in scaleout.failure_messages(run_id).lower(), scaleout.failure_messages(run_id)
    assert scaleout.champion_version() == champion
    print(f"celery worker lost: run failed {detected:.1f} s after the kill")
