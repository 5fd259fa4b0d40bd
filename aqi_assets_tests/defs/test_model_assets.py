"""Model assets on a real instance and a real MLflow: promotion, a failing gate, rollback, the pool."""

from __future__ import annotations

import os
import socket
from datetime import date, timedelta

import dagster as dg
import pytest

from aqi_assets.core.training import registry
from aqi_assets.core.data.lake import Lake
from aqi_assets.core.data.sources.simulated import SimulatedSource
from aqi_assets.definitions import defs
from aqi_assets.defs.resources import LakeIOManager, LakeResource, MlflowRegistryResource, ObservationSourceResource

START = date(2024, 1, 1)
DAYS = 40
FAST_SETTINGS = {"training.window_days": "36", "training.validation_days": "5", "training.holdout_days": "5",
                 "training.preset": "fast", "gates.min_within_20": "0.5"}


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    """A lake holding 40 simulated days, the station graph, and a fast training config."""
    root = tmp_path_factory.mktemp("models")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    lake = Lake(root / "lake")
    source = SimulatedSource(seed=7, n_stations=6, start=START, end=START + timedelta(days=DAYS - 1))
    for i in range(DAYS):
        day = START + timedelta(days=i)
        lake.write_frame("observations", day.isoformat(), source.read_day(day))
    resources = {
        "source": ObservationSourceResource(spec=source.spec),
        "lake": LakeResource(root=str(lake.root)),
        "io_manager": LakeIOManager(root=str(lake.root)),
        "mlflow_registry": MlflowRegistryResource(tracking_uri=uri),
        "mlflow": defs.resources["mlflow"].configured({"mlflow_tracking_uri": uri, "experiment_name": "model_tests"}),
    }
    with dg.instance_for_test() as instance:
        run(instance, resources, ["station_graph"])
        run(instance, resources, ["retraining_config"],
            run_config={"ops": {"retraining_config": {"config": {"set": FAST_SETTINGS}}}})
        MlflowRegistryResource(tracking_uri=uri).client()
        yield instance, resources, lake


def run(instance, resources, selection, run_config=None, tags=None, raise_on_error=True):
    assets = list(defs.assets)
    checks = list(defs.asset_checks or [])
    return dg.materialize(assets + checks, instance=instance, resources=resources, selection=selection,
                          run_config=run_config or {}, tags=tags or {}, raise_on_error=raise_on_error)


def retrain(instance, resources, model, tags=None):
    return run(instance, resources, ["training_dataset", f"{model}_model", f"{model}_promotion"],
               tags=tags or {"aqi/trigger_type": "drift", "aqi/severity": "critical", "aqi/reason": "test drift"},
               raise_on_error=False)


def checks_of(result):
    return {e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data
            for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}


def test_good_candidate_is_promoted_and_recorded(platform):
    instance, resources, lake = platform
    result = retrain(instance, resources, "xgboost")
    assert result.success
    gates = checks_of(result)
    assert set(gates) == {"rmse_within_limit", "accuracy_within_limit", "beats_persistence", "no_worse_than_champion"}
    assert all(g.passed for g in gates.values())
    promotion = result.asset_materializations_for_node("xgboost_promotion")[0].metadata
    assert promotion["action"].value == "promote" and promotion["from_version"].value == "none"
    assert promotion["trigger_type"].value == "drift" and promotion["reason"].value == "test drift"
    champion = registry.champion("xgboost")
    assert str(champion.version) == promotion["to_version"].value
    assert champion.tags["aqi.serving_since"] == (START + timedelta(days=DAYS)).isoformat()
    record = lake.read_json("xgboost_model")
    assert record["metrics"]["rmse"] < record["metrics"]["persistence_rmse"]
    assert record["trigger"]["trigger_type"] == "drift"
    tracked = resources["mlflow_registry"].client().get_run(record["mlflow_run_id"]).data
    assert tracked.params["run_type"] == "retraining"
    assert (tracked.params["trigger_trigger_type"], tracked.params["trigger_severity"], tracked.params["trigger_reason"]) \
        == ("drift", "critical", "test drift")
    assert 0 < tracked.metrics["training_duration_seconds"] < 300
    model_meta = result.asset_materializations_for_node("train_models")[0].metadata
    assert model_meta["mlflow_run"].value.startswith("http://127.0.0.1:5000/#/experiments/")
    assert model_meta["mlflow_run"].value.endswith(f"/runs/{record['mlflow_run_id']}")
    assert model_meta["mlflow_model_version"].value == \
        f"http://127.0.0.1:5000/#/models/aqi_predictor_xgboost/versions/{record['version']}"
    assert model_meta["holdout_rmse"].value == round(record["metrics"]["rmse"], 3)


def test_bad_candidate_fails_its_gate_and_leaves_the_champion(platform):
    instance, resources, lake = platform
    before = registry.champion("xgboost")
    assert before is not None
    run(instance, resources, ["retraining_config"],
        run_config={"ops": {"retraining_config": {"config": {"set": {"gates.max_rmse": "0.5"}}}}})
    try:
        result = retrain(instance, resources, "xgboost")
    finally:
        run(instance, resources, ["retraining_config"],
            run_config={"ops": {"retraining_config": {"config": {"set": {"gates.max_rmse": "25"}}}}})
    assert result.success  # a gate keeping the champion is an outcome, not a crash
    assert instance.get_run_by_id(result.run_id).tags["aqi/outcome"] == "kept_by_gate"
    assert instance.get_run_by_id(result.run_id).tags["aqi/gate"] == "rmse_within_limit"
    gate = checks_of(result)["rmse_within_limit"]
    assert not gate.passed and gate.severity == dg.AssetCheckSeverity.ERROR
    assert "> limit 0.5" in gate.description
    assert gate.metadata["threshold"].value == 0.5 and gate.metadata["value"].value > 0.5
    assert not result.asset_materializations_for_node("xgboost_promotion")
    assert registry.champion("xgboost").version == before.version
    rejected = lake.read_json("xgboost_model")["version"]
    assert registry.failed_gates("xgboost", rejected, ("rmse_within_limit",)) == ["rmse_within_limit"]


def test_rollback_restores_the_previous_version(platform):
    instance, resources, _ = platform
    first = str(registry.champion("xgboost").version)
    assert retrain(instance, resources, "xgboost").success
    second = str(registry.champion("xgboost").version)
    assert second != first
    result = run(instance, resources, ["xgboost_promotion"], run_config={
        "ops": {"xgboost_promotion": {"config": {"action": "rollback", "reason": "live error too high"}}}})
    meta = result.asset_materializations_for_node("xgboost_promotion")[0].metadata
    assert (meta["action"].value, meta["from_version"].value, meta["to_version"].value) == ("rollback", second, first)
    assert meta["reason"].value == "live error too high"
    assert str(registry.champion("xgboost").version) == first
    history = instance.fetch_materializations(dg.AssetKey("xgboost_promotion"), limit=10).records
    actions = [r.asset_materialization.metadata["action"].value for r in history]
    assert actions[:3] == ["rollback", "promote", "promote"]


def test_manual_retraining_trains_only_the_requested_model(platform):
    instance, resources, lake = platform
    job = defs.resolve_job_def("manual_retraining")
    result = job.execute_in_process(
        instance=instance, resources=resources, raise_on_error=False,
        run_config={"model": "xgboost", "reason": "new sensor firmware", "severity": "high"},
    )
    assert result.success
    trained = {e.asset_key.to_user_string() for e in result.all_events
               if e.event_type_value == "ASSET_MATERIALIZATION"}
    assert {"training_dataset", "xgboost_model", "xgboost_promotion"} <= trained
    assert not trained & {"lstm_model", "gnn_model", "lstm_promotion", "gnn_promotion"}
    record = lake.read_json("xgboost_model")
    assert record["trigger"] == {"trigger_type": "manual", "severity": "high", "reason": "new sensor firmware", "key": ""}
    with pytest.raises(dg.DagsterInvalidConfigError, match="not in enum type Severity got sometimes"):
        job.execute_in_process(instance=instance, resources=resources,
                               run_config={"model": "gnn", "reason": "x", "severity": "sometimes"})


def test_weekly_report_counts_runs_gates_and_promotions(platform):
    instance, resources, lake = platform
    job = defs.resolve_job_def("retrain_xgboost")
    run(instance, resources, ["retraining_config"],
        run_config={"ops": {"retraining_config": {"config": {"set": {"gates.max_rmse": "0.5"}}}}})
    try:
        failed = job.execute_in_process(instance=instance, resources=resources, raise_on_error=False,
                                        tags={"aqi/trigger_type": "drift", "aqi/reason": "report test"})
    finally:
        run(instance, resources, ["retraining_config"],
            run_config={"ops": {"retraining_config": {"config": {"set": {"gates.max_rmse": "25"}}}}})
    assert failed.success
    assert instance.get_run_by_id(failed.run_id).tags["aqi/outcome"] == "kept_by_gate"
    result = run(instance, resources, ["retraining_report"])
    meta = result.asset_materializations_for_node("retraining_report")[0].metadata
    # the manual retraining of the test above (promoted) and this gate-stopped drift retraining, which
    # counts as a success: the platform kept the champion, as it should
    assert meta["retrainings"].value == 2 and meta["promotions"].value == 1
    assert meta["success_rate"].value == 1.0
    text = (lake.root / "reports").glob("retraining_report_*.md")
    written = next(text).read_text()
    assert "triggers by type: drift 1, manual 1" in written
    assert "kept by gate: rmse_within_limit" in written and "promoted" in written
    assert "a gate kept the champion 1 time(s)" in written
    assert "report test" in written


def test_unreachable_mlflow_is_retried_with_backoff_then_fails_clearly(platform):
    instance, resources, _ = platform
    before = registry.champion("xgboost")
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    down = {**resources, "mlflow": defs.resources["mlflow"].configured(
        {"mlflow_tracking_uri": dead, "experiment_name": "model_tests"})}
    result = run(instance, down, ["training_dataset", "xgboost_model", "xgboost_promotion"], raise_on_error=False)
    assert not result.success
    kinds = [e.event_type_value for e in result.all_events if e.step_key == "train_models"]
    assert kinds.count("STEP_UP_FOR_RETRY") == 3 and kinds.count("STEP_RESTARTED") == 3
    assert kinds[-1] == "STEP_FAILURE"
    retried = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert all(f"MLflow tracking server at {dead} is unreachable" in str(e.event_specific_data.error)
               for e in retried), retried[0].event_specific_data
    failure = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"][0].step_failure_data
    assert failure.user_failure_data.description.startswith("MLflow: MlflowUnavailable: MLflow tracking server at")
    assert failure.user_failure_data.description.endswith("still failing after retries")
    assert not result.asset_materializations_for_node("xgboost_promotion")
    after = registry.champion("xgboost", resources["mlflow_registry"].client())
    assert getattr(after, "version", None) == getattr(before, "version", None)
    assert os.environ["MLFLOW_TRACKING_URI"] != dead  # the platform's own setting did not follow the override


def test_a_deterministic_error_is_not_retried_and_names_its_cause(platform, monkeypatch):
    from aqi_assets.defs.training import models

    instance, resources, _ = platform
    before = registry.champion("xgboost").version

    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero in a feature")

    monkeypatch.setattr(models, "train_candidate", broken)
    result = run(instance, resources, ["training_dataset", "xgboost_model", "xgboost_promotion"], raise_on_error=False)
    assert not result.success
    kinds = [e.event_type_value for e in result.all_events if e.step_key == "train_models"]
    assert "STEP_UP_FOR_RETRY" not in kinds and kinds[-1] == "STEP_FAILURE"
    failure = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"][0].step_failure_data
    assert failure.user_failure_data.description == (
        "xgboost: ZeroDivisionError: division by zero in a feature — not retried (not a transient failure)")
    assert registry.champion("xgboost").version == before


def test_a_lost_connection_is_retried_and_the_retraining_then_succeeds(platform, monkeypatch):
    from aqi_assets.defs.training import models

    instance, resources, _ = platform
    real, calls = models.train_candidate, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionResetError(104, "connection reset by peer")
        return real(*args, **kwargs)

    monkeypatch.setattr(models, "train_candidate", flaky)
    result = retrain(instance, resources, "xgboost")
    assert result.success and len(calls) == 2
    kinds = [e.event_type_value for e in result.all_events if e.step_key == "train_models"]
    assert kinds.count("STEP_UP_FOR_RETRY") == 1


def test_a_rollback_to_a_version_that_failed_its_gates_is_refused_unless_forced(platform):
    instance, resources, lake = platform
    run(instance, resources, ["retraining_config"],
        run_config={"ops": {"retraining_config": {"config": {"set": {"gates.max_rmse": "0.5"}}}}})
    try:
        assert retrain(instance, resources, "xgboost").success
    finally:
        run(instance, resources, ["retraining_config"],
            run_config={"ops": {"retraining_config": {"config": {"set": {"gates.max_rmse": "25"}}}}})
    rejected = lake.read_json("xgboost_model")["version"]
    champion = registry.champion("xgboost").version
    config = {"action": "rollback", "to_version": rejected, "reason": "try the rejected one"}
    refused = run(instance, resources, ["xgboost_promotion"], raise_on_error=False,
                  run_config={"ops": {"xgboost_promotion": {"config": config}}})
    assert not refused.success and registry.champion("xgboost").version == champion
    failure = [e for e in refused.all_events if e.event_type_value == "STEP_FAILURE"][0].step_failure_data
    assert f"refusing to roll xgboost back to v{rejected}: it did not pass gate(s) rmse_within_limit" in \
        failure.user_failure_data.description
    forced = run(instance, resources, ["xgboost_promotion"],
                 run_config={"ops": {"xgboost_promotion": {"config": {**config, "force": True}}}})
    meta = forced.asset_materializations_for_node("xgboost_promotion")[0].metadata
    assert meta["to_version"].value == rejected
    assert meta["reason"].value == "FORCED past failed gates: try the rejected one"
    run(instance, resources, ["xgboost_promotion"], run_config={"ops": {"xgboost_promotion": {"config": {
        "action": "rollback", "to_version": str(champion), "reason": "back to the gated champion"}}}})


def test_a_manual_request_launched_with_config_only_gets_its_tags_and_an_identical_waiting_one_answers_it(platform):
    instance, resources, _ = platform
    job = defs.resolve_job_def("manual_retraining")
    request = {"model": "lstm", "reason": "duplicate check", "severity": "low"}
    waiting = instance.create_run_for_job(job_def=job, run_config=request)  # queued, not started yet
    result = job.execute_in_process(instance=instance, resources=resources, run_config=request)
    tags = instance.get_run_by_id(result.run_id).tags
    assert (tags["aqi/model"], tags["aqi/reason"], tags["aqi/severity"]) == ("lstm", "duplicate check", "low")
    assert tags["aqi/outcome"] == "deduplicated" and tags["aqi/deduplicated_into"] == waiting.run_id
    materialized = {e.asset_key.to_user_string() for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"}
    assert not materialized  # nothing trained twice: the run stopped after its first step
    instance.delete_run(waiting.run_id)


def test_every_promotion_carries_the_history_of_the_serving_version(platform):
    instance, resources, _ = platform
    latest = instance.fetch_materializations(dg.AssetKey("xgboost_promotion"), limit=1).records[0]
    meta = latest.asset_materialization.metadata
    table = meta["history"].value
    count = len(instance.fetch_materializations(dg.AssetKey("xgboost_promotion"), limit=100).records)
    assert len(table.records) == count  # one row per change of the serving version, this one first
    assert [c.name for c in table.schema.columns] == ["serves from", "changed at (UTC)", "from", "to", "action",
                                                       "trigger", "reason", "holdout RMSE"]
    newest, oldest = table.records[0].data, table.records[-1].data
    assert newest["to"] == f"v{meta['to_version'].value}" and newest["action"] == meta["action"].value
    assert oldest["from"] == "-" and oldest["action"] == "promote" and oldest["trigger"] == "drift"
    assert "data:image/png;base64," in meta["live_rmse"].value


def _set_config(instance, resources, values: dict):
    run(instance, resources, ["retraining_config"],
        run_config={"ops": {"retraining_config": {"config": {"set": values}}}})


def test_warm_start_continues_the_champion_and_the_gates_still_decide(platform):
    instance, resources, lake = platform
    if registry.champion("xgboost") is None:
        assert retrain(instance, resources, "xgboost").success
    champion = registry.champion("xgboost")
    champion_rounds = lake.read_json("xgboost_model")["fit"]
    _set_config(instance, resources, {"training.warm_start": "true"})
    try:
        result = retrain(instance, resources, "xgboost")
        assert result.success
        meta = next(m.metadata for m in result.asset_materializations_for_node("train_models")
                    if m.asset_key == dg.AssetKey("xgboost_model"))
        assert meta["warm_start_from"].value == f"v{champion.version}"
        record = lake.read_json("xgboost_model")
        warm = record["fit"]["warm_start"]
        assert warm["used"] is True
        for name, rounds in warm["champion_rounds"].items():
            assert 0 < rounds < record["fit"][f"{name}_rounds"]
        assert record["champion"]["version"] == str(champion.version)
        gates = checks_of(result)
        assert len(gates) == 4
        promoted = bool(result.asset_materializations_for_node("xgboost_promotion"))
        assert promoted == all(g.passed for g in gates.values())
        serving = registry.champion("xgboost")
        # A warm-started candidate that fails a gate leaves the champion serving.
        _set_config(instance, resources, {"gates.max_rmse": "0.5"})
        kept = retrain(instance, resources, "xgboost")
        assert kept.success and lake.read_json("xgboost_model")["fit"]["warm_start"]["used"] is True
        assert not checks_of(kept)["rmse_within_limit"].passed
        assert not kept.asset_materializations_for_node("xgboost_promotion")
        assert registry.champion("xgboost").version == serving.version
    finally:
        _set_config(instance, resources, {"training.warm_start": "false", "gates.max_rmse": "25"})
    assert champion_rounds  # the first champion was trained from scratch
    assert lake.read_json("xgboost_model")["fit"]["warm_start"]["used"] is True
    off = retrain(instance, resources, "xgboost")
    assert off.success and lake.read_json("xgboost_model")["fit"]["warm_start"] == {"used": False}
