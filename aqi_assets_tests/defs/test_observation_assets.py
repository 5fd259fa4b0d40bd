"""Ingestion assets on a real Dagster instance: metadata, blocking gates, failures that name the file."""

from __future__ import annotations

from datetime import date

import dagster as dg
import pandas as pd
import pytest

from aqi_assets.core.data.lake import Lake
from aqi_assets.defs.observations.assets import feature_stats, observations, station_graph
from aqi_assets.defs.resources import LakeIOManager, LakeResource, ObservationSourceResource
from aqi_assets_tests.factories import canonical_rows, write_csv_long, write_prsa


def resources(tmp_path, spec: str) -> dict:
    root = str(tmp_path / "lake")
    return {"source": ObservationSourceResource(spec=spec), "lake": LakeResource(root=root),
            "io_manager": LakeIOManager(root=root)}


def check_evaluations(result) -> dict:
    return {e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data
            for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}


def test_simulated_day_materializes_with_metadata_and_passing_checks(tmp_path):
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [observations, feature_stats, station_graph], instance=instance, partition_key="2024-02-10",
            resources=resources(tmp_path, ""), selection=["observations", "feature_stats"],
        )
        assert result.success
        meta = result.asset_materializations_for_node("observations")[0].metadata
        assert meta["dagster/row_count"].value == 6 * 24
        assert meta["stations"].value == 6
        assert meta["fit_for_training"].value is True
        assert "data:image/png;base64," in meta["plot"].value
        checks = check_evaluations(result)
        assert len(checks) == 7 and all(c.passed for c in checks.values())
        assert meta["not_measured"].value == "humidity" and meta["measured"].value.startswith("pm25, pm10")
        stats = Lake(tmp_path / "lake").read_frame("feature_stats", "2024-02-10")
        assert len(stats) == 6 * 12 and set(stats["date"]) == {pd.Timestamp("2024-02-10")}


def test_failed_blocking_gate_keeps_raw_rows_and_stops_feature_stats(tmp_path):
    frame = canonical_rows(start=date(2024, 3, 1), days=3)
    bad = (frame["station"] == "Alpha") & (frame["timestamp"] == pd.Timestamp("2024-03-02 06:00"))
    frame.loc[bad, "pm25"] = -3.0
    write_csv_long(tmp_path / "src", frame)
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [observations, feature_stats], instance=instance, partition_key="2024-03-02",
            resources=resources(tmp_path, f"csv:{tmp_path / 'src'}"), raise_on_error=False,
        )
        checks = check_evaluations(result)
        gate = checks["values_physically_possible"]
        assert not gate.passed and gate.severity == dg.AssetCheckSeverity.ERROR
        assert "column pm25, station Alpha: negative concentration" in gate.description
        assert "2024-03-02 06:00" in gate.description
        # the raw day is stored exactly as received, marked unfit for training
        lake = Lake(tmp_path / "lake")
        stored = lake.read_frame("observations", "2024-03-02")
        assert len(stored) == 72 and (stored["pm25"] == -3.0).sum() == 1
        assert lake.read_json("observation_quality", "2024-03-02")["fit_for_training"] is False
        # the blocking gate kept feature_stats from running on the bad day
        assert not result.asset_materializations_for_node("feature_stats")
        assert not lake.has("feature_stats", "2024-03-02")


def test_unreadable_file_fails_only_its_days(tmp_path):
    frame = canonical_rows(start=date(2024, 3, 1), days=3)
    paths = write_prsa(tmp_path / "src", frame, gz=False)
    lines = paths["Bravo"].read_bytes().split(b"\n")
    lines[40] = lines[40].replace(b"Bravo", b"Br\xe9vo")
    paths["Bravo"].write_bytes(b"\n".join(lines))
    spec = f"prsa:{tmp_path / 'src'}"
    with dg.instance_for_test() as instance:
        bad = dg.materialize([observations], instance=instance, partition_key="2024-03-02",
                             resources=resources(tmp_path, spec), raise_on_error=False)
        assert not bad.success
        failure = next(e for e in bad.all_events if e.event_type_value == "STEP_FAILURE")
        message = failure.step_failure_data.user_failure_data.description
        assert "PRSA_Data_Bravo" in message and "line 41" in message and "not UTF-8" in message
        good = dg.materialize([observations], instance=instance, partition_key="2024-03-03",
                              resources=resources(tmp_path, spec))
        assert good.success


def test_station_graph_links_neighbours(tmp_path):
    with dg.instance_for_test() as instance:
        result = dg.materialize([station_graph], instance=instance, resources=resources(tmp_path, ""))
        meta = result.asset_materializations_for_node("station_graph")[0].metadata
        assert meta["stations"].value == 6 and meta["edges"].value > 0
        graph = Lake(tmp_path / "lake").read_json("station_graph")
        assert len(graph["stations"]) == 6


def test_a_run_reads_the_unpartitioned_value_it_produced_itself(tmp_path):
    """Two retrainings at once: each run's model step reads its own training_dataset, not the other's."""
    from aqi_assets.defs.resources import RUNS_FOLDER

    manager = LakeIOManager(root=str(tmp_path))
    key = dg.AssetKey("training_dataset")
    first, second = pd.DataFrame({"x": [1]}), pd.DataFrame({"x": [2]})
    manager.handle_output(dg.build_output_context(asset_key=key, run_id="run-a"), first)
    manager.handle_output(dg.build_output_context(asset_key=key, run_id="run-b"), second)  # the newer run
    upstream = dg.build_output_context(asset_key=key, run_id="run-a")
    own = manager.load_input(dg.build_input_context(asset_key=key, upstream_output=upstream))
    assert own["x"].tolist() == [1]  # run a still trains on its own window
    latest = manager.load_input(dg.build_input_context(asset_key=key))
    assert latest["x"].tolist() == [2]  # everyone else sees the latest
    assert sorted(p.name for p in (tmp_path / "training_dataset" / RUNS_FOLDER).iterdir()) == \
        ["run-a.parquet", "run-b.parquet"]
