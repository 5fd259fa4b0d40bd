"""The whole loop on networks unlike Beijing's: checks, configuration, three models, gates, promotion.

Two networks, differently shaped: the real Beijing data reduced to NO2, temperature and wind
(wind in degrees, long CSV with only those columns), forecasting NO2; and a simulated
low-cost network that measures only PM2.5 and relative humidity.
"""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg
import pandas as pd
import pytest

from aqi_assets.core.configuration.config import MODEL_NAMES
from aqi_assets.core.configuration.store import current_config
from aqi_assets.core.data.lake import Lake
from aqi_assets.core.data.sources import source_from_spec
from aqi_assets.core.data.validation import validate_day
from aqi_assets.definitions import defs
from aqi_assets.defs.config.assets import retraining_config
from aqi_assets.defs.resources import LakeIOManager, LakeResource, MlflowRegistryResource, ObservationSourceResource

DAYS = 22
TRAINING = {"training.window_days": "20", "training.validation_days": "3", "training.holdout_days": "3",
            "training.preset": "fast"}


#: The test session's daily partitions span 2024–2025 (conftest's source), so the Beijing days are
#: moved forward by eight years (2016-10-03 becomes 2024-10-03); the values are untouched.
YEARS_FORWARD = pd.DateOffset(years=8)


def write_no2_network(beijing_dir, directory, first: date) -> None:
    """Beijing's NO2, temperature and wind for ``DAYS`` days, as a small city would export them."""
    beijing = source_from_spec(f"prsa:{beijing_dir}")
    frame = beijing.read_range(first, first + timedelta(days=DAYS - 1))
    frame = frame[["timestamp", "station", "no2", "temperature", "wind_speed", "wind_direction"]].copy()
    frame["timestamp"] = frame["timestamp"] + YEARS_FORWARD
    assert frame["wind_direction"].dtype == "float64"  # degrees
    directory.mkdir()
    for station, rows in frame.groupby("station"):
        rows.to_csv(directory / f"{station}.csv", index=False, date_format="%Y-%m-%d %H:%M")
    beijing.stations().to_csv(directory / "stations.csv", index=False)


def materialize(instance, resources, selection, **kwargs):
    return dg.materialize(list(defs.assets) + list(defs.asset_checks or []), instance=instance,
                          resources=resources, selection=selection, **kwargs)


def run_the_loop(tmp_path, spec: str, first: date, changes: dict) -> dict:
    """Record the configuration, ingest ``DAYS`` days, retrain each model; what came out.

    The first two days go through the ``observations`` asset and its checks on the instance; the
    rest are checked with the same ``validate_day`` and stored directly, to keep the test short.
    """
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    lake = Lake(tmp_path / "lake")
    resources = {
        "source": ObservationSourceResource(spec=spec),
        "lake": LakeResource(root=str(lake.root)),
        "io_manager": LakeIOManager(root=str(lake.root)),
        "mlflow_registry": MlflowRegistryResource(tracking_uri=uri),
        "mlflow": defs.resources["mlflow"].configured({"mlflow_tracking_uri": uri, "experiment_name": "networks"}),
    }
    out: dict = {"checks": {}, "models": {}, "gates": {}}
    with dg.instance_for_test() as instance:
        config = materialize(instance, resources, ["retraining_config"],
                             run_config={"ops": {"retraining_config": {"config": {"set": changes}}}})
        out["config"] = config.asset_materializations_for_node("retraining_config")[0].metadata
        source = source_from_spec(spec)
        settings = current_config(lake)
        for i in range(DAYS):
            day = first + timedelta(days=i)
            if i < 2:
                result = materialize(instance, resources, ["observations", "feature_stats"],
                                     partition_key=day.isoformat())
                out["checks"][day] = {e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data.passed
                                      for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
                out.setdefault("observations", result.asset_materializations_for_node("observations")[0].metadata)
                continue
            frame = source.read_day(day)
            outcomes = validate_day(frame, day, source.station_ids(), settings.quality, settings.training.target,
                                    source.network())
            out["checks"][day] = {o.name: o.passed for o in outcomes}
            lake.write_frame("observations", day.isoformat(), frame)
        materialize(instance, resources, ["station_graph"])
        for model in MODEL_NAMES:
            result = materialize(instance, resources, ["training_dataset", f"{model}_model", f"{model}_promotion"],
                                 raise_on_error=False)
            out["gates"][model] = {e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data
                                   for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
            out["models"][model] = lake.read_json(f"{model}_model")
        out["stats_features"] = set(lake.read_frame("feature_stats", first.isoformat())["feature"])
    return out


def assert_the_loop_followed_the_network(out: dict, target: str, measured: set[str]) -> None:
    for day, checks in out["checks"].items():
        assert len(checks) == 7 and all(checks.values()), (day, checks)
    assert out["stats_features"] == measured
    scores = {}
    for model, record in out["models"].items():
        assert record["hyperparams"]["target"] == target
        metrics = record["metrics"]
        assert metrics["n"] > 100 and metrics["rmse"] > 0
        scores[model] = metrics["rmse"]
        gates = out["gates"][model]
        assert set(gates) == {"rmse_within_limit", "accuracy_within_limit", "beats_persistence",
                              "no_worse_than_champion"}
        assert f"holdout RMSE of {target}" in gates["rmse_within_limit"].description
        assert f"of {target} forecasts within ±20 %" in gates["accuracy_within_limit"].description
    best = min(scores, key=scores.get)
    assert scores[best] < out["models"][best]["metrics"]["persistence_rmse"], scores


@pytest.mark.integration
def test_beijing_reduced_to_no2_and_wind_runs_the_whole_loop(tmp_path, beijing_dir):
    directory = tmp_path / "no2_network"
    write_no2_network(beijing_dir, directory, date(2016, 10, 3))
    out = run_the_loop(tmp_path, f"csv:{directory}", date(2024, 10, 3), {**TRAINING, "training.target": "no2"})
    meta = out["observations"]
    assert meta["measured"].value == "no2, temperature, wind_speed, wind_direction"
    assert meta["not_measured"].value == "pm25, pm10, so2, co, o3, pressure, dew_point, humidity, rain"
    assert "no2_mean" in meta and "plot" in meta
    assert "review them for it" in out["config"]["notes"].value
    assert_the_loop_followed_the_network(out, "no2", {"no2", "temperature", "wind_speed", "wind_direction"})


def test_a_simulated_pm25_and_humidity_network_runs_the_whole_loop(tmp_path):
    spec = "simulated:seed=5,stations=6,start=2024-01-01,end=2024-03-31,columns=pm25+humidity"
    out = run_the_loop(tmp_path, spec, date(2024, 2, 1), {**TRAINING, "gates.min_within_20": "0.5"})
    assert out["observations"]["not_measured"].value.startswith("pm10, so2, no2, co, o3, temperature")
    assert_the_loop_followed_the_network(out, "pm25", {"pm25", "humidity"})


def test_a_target_the_network_does_not_measure_is_refused_naming_the_field(tmp_path):
    spec = "simulated:seed=5,stations=3,start=2024-01-01,end=2024-03-31,columns=pm25+humidity"
    lake = Lake(tmp_path / "lake")
    resources = {"source": ObservationSourceResource(spec=spec), "lake": LakeResource(root=str(lake.root)),
                 "io_manager": LakeIOManager(root=str(lake.root))}
    with dg.instance_for_test() as instance:
        result = dg.materialize([retraining_config], instance=instance, resources=resources, raise_on_error=False,
                             run_config={"ops": {"retraining_config": {"config": {"set": {"training.target": "no2"}}}}})
    assert result.success  # a rejected change is an outcome, not a crash
    assert not result.asset_materializations_for_node("retraining_config")
    observation = next(e for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION")
    metadata = observation.asset_observation_data.asset_observation.metadata
    assert metadata["field"].value == "training.target"
    assert "target 'no2' is not measured by this network (it measures pm25)" in metadata["rejected"].value
    assert lake.read_json("retraining_config") is None  # nothing recorded
