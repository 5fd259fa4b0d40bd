"""The station graph: distances, bearings, k-nearest/radius edges, fallbacks, serialisation, scale."""

import json
import time

import numpy as np
import pandas as pd
import pytest

from aqi_assets.core.data.station_graph import (
    StationGraph,
    build_station_graph,
    haversine_km,
    initial_bearing_deg,
)

# A plus sign around C at roughly 11 km (0.1° of latitude) and a far station F.
PLUS = pd.DataFrame({
    "station": ["C", "N", "E", "S", "W", "F"],
    "latitude": [40.0, 40.1, 40.0, 39.9, 40.0, 41.0],
    "longitude": [116.0, 116.0, 116.1306, 116.0, 115.8694, 116.0],
})


def test_haversine_and_bearing_on_known_points():
    assert haversine_km(0.0, 0.0, 0.0, 1.0) == pytest.approx(111.195, abs=0.01)
    assert haversine_km(40.0, 116.0, 40.1, 116.0) == pytest.approx(11.12, abs=0.01)
    assert initial_bearing_deg(40.0, 116.0, 40.1, 116.0) == pytest.approx(0.0, abs=1e-6)
    assert initial_bearing_deg(40.0, 116.0, 40.0, 116.1) == pytest.approx(90.0, abs=0.1)
    assert initial_bearing_deg(40.0, 116.0, 39.9, 116.0) == pytest.approx(180.0, abs=1e-6)
    assert initial_bearing_deg(40.0, 116.0, 40.0, 115.9) == pytest.approx(270.0, abs=0.1)


def test_k_nearest_edges_point_into_each_station():
    graph = build_station_graph(PLUS, k=4)
    assert graph.n_edges == 6 * 4
    assert sorted(graph.neighbours("C")) == ["E", "N", "S", "W"]
    assert graph.neighbours("F")[0] == "N"
    edges = graph.to_frame().set_index(["source", "target"])
    assert edges.loc[("N", "C"), "distance_km"] == pytest.approx(11.12, abs=0.01)
    assert edges.loc[("N", "C"), "bearing_deg"] == pytest.approx(180.0, abs=0.01)  # N → C heads south
    assert edges.loc[("N", "F"), "distance_km"] == pytest.approx(100.1, abs=0.2)
    assert edges.loc[("N", "C"), "weight"] > 0.5 > 0.01 > edges.loc[("N", "F"), "weight"]
    assert np.all((graph.weight > 0) & (graph.weight <= 1))


def test_radius_limits_edges_to_nearby_stations():
    graph = build_station_graph(PLUS, k=None, radius_km=15.0)
    assert sorted(graph.neighbours("C")) == ["E", "N", "S", "W"]
    assert graph.neighbours("F") == []
    assert graph.n_edges == 8  # C↔N, C↔E, C↔S, C↔W
    assert np.all(graph.distance_km <= 15.0)


def test_wind_alignment_is_one_when_wind_blows_from_source_to_target():
    graph = build_station_graph(PLUS.iloc[:2], k=1)  # C→N (bearing 0) and N→C (bearing 180)
    edges = graph.to_frame()
    wind_from_south = np.array([[180.0, 180.0]])  # blows towards north at both stations
    align = graph.wind_alignment(wind_from_south)[0]
    c_to_n = int(np.flatnonzero((edges["source"] == "C") & (edges["target"] == "N"))[0])
    n_to_c = int(np.flatnonzero((edges["source"] == "N") & (edges["target"] == "C"))[0])
    assert align[c_to_n] == pytest.approx(1.0)
    assert align[n_to_c] == pytest.approx(-1.0)
    assert graph.wind_alignment(np.array([[np.nan, np.nan]]))[0].tolist() == [0.0, 0.0]


def test_stations_without_coordinates_fall_back_as_documented():
    table = pd.concat([PLUS.iloc[:3], pd.DataFrame({"station": ["X"], "latitude": [np.nan], "longitude": [np.nan]})])
    connected = build_station_graph(table, k=1)
    assert sorted(connected.neighbours("X")) == ["C", "E", "N"]
    assert "X" in connected.to_frame().query("target == 'C'")["source"].tolist()
    assert np.isnan(connected.to_frame().query("source == 'X'")["distance_km"]).all()
    isolated = build_station_graph(table, k=1, missing_coordinates="isolated")
    assert isolated.neighbours("X") == []
    assert isolated.n_edges == 3
    nothing_known = build_station_graph(pd.DataFrame({"station": ["a", "b", "c"]}))
    assert nothing_known.n_edges == 6


def test_round_trips_through_dict_json_and_frame():
    table = pd.concat([PLUS, pd.DataFrame({"station": ["X"], "latitude": [np.nan], "longitude": [np.nan]})])
    graph = build_station_graph(table, k=3)
    assert StationGraph.from_dict(json.loads(json.dumps(graph.to_dict()))) == graph
    assert StationGraph.from_frame(graph.to_frame()) == graph
    lonely = build_station_graph(PLUS, k=None, radius_km=15.0)  # F has no edges
    assert StationGraph.from_frame(lonely.to_frame()) == lonely


def test_reindexing_to_other_stations_keeps_edges_among_known_ones():
    graph = build_station_graph(PLUS, k=2)
    sub = graph.for_stations(["W", "C", "Z"])
    assert sub.stations == ("W", "C", "Z")
    assert sub.neighbours("Z") == []
    assert set(sub.neighbours("W")) <= {"C"}
    assert np.isnan(sub.latitude[2]) and sub.latitude[0] == pytest.approx(40.0)


def test_thousand_stations_build_quickly_with_k_edges_each():
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"station": [f"S{i:04d}" for i in range(1000)],
                          "latitude": rng.uniform(39, 41, 1000), "longitude": rng.uniform(115, 117, 1000)})
    started = time.perf_counter()
    graph = build_station_graph(table, k=8)
    assert time.perf_counter() - started < 5.0
    assert graph.n_edges == 8000
    assert np.bincount(graph.target, minlength=1000).tolist() == [8] * 1000
    assert StationGraph.from_dict(graph.to_dict()) == graph


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="station"):
        build_station_graph(pd.DataFrame({"name": ["a"]}))
    with pytest.raises(ValueError, match="missing_coordinates"):
        build_station_graph(PLUS, missing_coordinates="ignore")
