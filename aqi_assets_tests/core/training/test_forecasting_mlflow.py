"""Forecasters through MLflow: log to a local SQLite-backed store, load back, same predictions."""

from datetime import date

import mlflow
import pandas as pd
import pytest

from aqi_assets.core.training.forecasting import ForecastSpec, load_forecaster, log_forecaster, make_forecaster
from aqi_assets.core.data.sources.simulated import SimulatedSource
from aqi_assets.core.data.station_graph import build_station_graph


@pytest.fixture()
def tracking(tmp_path):
    previous, previous_registry = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    mlflow.set_registry_uri(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = mlflow.create_experiment("forecasters", artifact_location=str(tmp_path / "artifacts"))
    yield experiment
    mlflow.set_tracking_uri(previous)
    mlflow.set_registry_uri(previous_registry)


@pytest.fixture(scope="module")
def frames():
    source = SimulatedSource(seed=5, n_stations=3, start=date(2024, 1, 1), end=date(2024, 2, 1))
    return (source.read_range(date(2024, 1, 1), date(2024, 1, 12)),
            source.read_range(date(2024, 1, 13), date(2024, 1, 15)),
            source.read_range(date(2024, 1, 16), date(2024, 1, 18)),
            build_station_graph(source.stations(), k=2))


@pytest.mark.parametrize("kind", ["xgboost", "gnn"])
def test_logged_forecaster_loads_back_with_identical_predictions(kind, tracking, frames):
    train, valid, test, graph = frames
    model = make_forecaster(kind, ForecastSpec(), preset="fast")
    model.fit(train, valid, graph)
    history = pd.concat([valid, test], ignore_index=True)
    example = history[history["timestamp"] > history["timestamp"].max() - pd.Timedelta(hours=model.lookback_hours + 3)]
    with mlflow.start_run(experiment_id=tracking):
        info = log_forecaster(model, input_example=example, registered_model_name=f"aqi-{kind}")
    assert info.registered_model_version == 1
    assert "xgboost==" in " ".join(_requirements(info.model_uri))
    loaded = load_forecaster(f"models:/aqi-{kind}/1")
    assert loaded.kind == kind and loaded.params() == model.params()
    expected = model.predict(history)
    assert len(expected) > 100
    pd.testing.assert_frame_equal(loaded.predict(history), expected)
    # the pyfunc flavour takes the history frame and returns the prediction frame
    served = mlflow.pyfunc.load_model(info.model_uri).predict(example)
    pd.testing.assert_frame_equal(served.reset_index(drop=True), model.predict(example))
    assert len(served) == 3 * 3


def _requirements(model_uri: str) -> list[str]:
    with open(mlflow.pyfunc.get_model_dependencies(model_uri)) as handle:
        return handle.read().split()
