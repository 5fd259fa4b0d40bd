"""Registry operations on a real MLflow (SQLite backend): promotion, rollback, gate tags."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from aqi_assets.core.training import registry
from aqi_assets.core.training.registry import RegistryError


class _Constant(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input


@pytest.fixture(scope="module")
def mlflow_backend(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    previous = mlflow.get_tracking_uri()
    registry.configure_mlflow(f"sqlite:///{root}/mlflow.db", str(root / "artifacts"), "registry_tests")
    mlflow.set_experiment("registry_tests")
    yield MlflowClient()
    mlflow.set_tracking_uri(previous)


def register(model: str) -> str:
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="model", python_model=_Constant(), pip_requirements=["mlflow"],
            registered_model_name=registry.registered_model_name(model),
        )
    return str(info.registered_model_version)


def test_promote_then_rollback_moves_aliases_and_tags(mlflow_backend):
    client = mlflow_backend
    v1, v2 = register("xgboost"), register("xgboost")
    assert registry.champion("xgboost") is None

    first = registry.promote("xgboost", v1, trigger_type="manual", reason="first model", metrics={"rmse": 10.0})
    assert (first.from_version, first.to_version, first.action) == (None, v1, "promote")
    assert str(registry.champion("xgboost").version) == v1

    second = registry.promote("xgboost", v2, trigger_type="drift", reason="pm25 mean shift")
    assert (second.from_version, second.to_version) == (v1, v2)
    assert str(registry.champion("xgboost").version) == v2
    assert str(registry.previous_champion("xgboost").version) == v1
    name = registry.registered_model_name("xgboost")
    assert client.get_model_version(name, v1).tags["stage"] == "Archived"
    assert client.get_model_version(name, v2).tags["stage"] == "Production"

    back = registry.rollback("xgboost", reason="bad live error")
    assert (back.action, back.from_version, back.to_version) == ("rollback", v2, v1)
    assert str(registry.champion("xgboost").version) == v1
    assert str(registry.previous_champion("xgboost").version) == v2
    assert registry.champion_uri("xgboost") == "models:/aqi_predictor_xgboost@champion"
    assert [str(v.version) for v in registry.versions("xgboost")][:2] == [v2, v1]


def test_gate_tags_and_refusals(mlflow_backend):
    v = register("lstm")
    registry.tag_gate_results("lstm", v, {"rmse_within_limit": True, "beats_persistence": False})
    assert registry.failed_gates("lstm", v, ("rmse_within_limit", "beats_persistence", "accuracy_within_limit")) == [
        "beats_persistence", "accuracy_within_limit",
    ]
    name = registry.registered_model_name("lstm")
    assert mlflow_backend.get_model_version(name, v).tags["stage"] == "Rejected"
    with pytest.raises(RegistryError, match="no previous_champion"):
        registry.rollback("lstm", reason="nothing to go back to")
    registry.promote("lstm", v, trigger_type="manual", reason="forced")
    with pytest.raises(RegistryError, match="already the champion"):
        registry.promote("lstm", v, trigger_type="manual", reason="again")
    with pytest.raises(RegistryError, match="unknown model 'prophet'"):
        registry.registered_model_name("prophet")


def _open_store(uri: str, artifacts: str) -> str:
    from aqi_assets.core.training import registry as module

    return module.configure_mlflow(uri, artifacts, "concurrent_start")


def test_run_workers_opening_a_fresh_embedded_store_at_once_all_find_one_experiment(tmp_path):
    """Three processes open a new SQLite store at the same moment (three retraining runs on a fresh
    instance): each gets the same experiment, none fails on another's table creation."""
    import multiprocessing

    uri = f"sqlite:///{tmp_path}/fresh/mlflow.db"
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        ids = pool.starmap(_open_store, [(uri, str(tmp_path / "artifacts"))] * 3)
    assert len(set(ids)) == 1 and (tmp_path / "fresh" / "mlflow.db.lock").exists()
