"""The hourly grid, the tabular features and the sequence inputs: correct values, never the future."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from aqi_assets.core.training.forecasting import ForecastSpec
from aqi_assets.core.training.forecasting.panel import Panel
from aqi_assets.core.training.forecasting.sequence_inputs import SequenceScaler
from aqi_assets.core.training.forecasting.tabular_features import tabular_features
from aqi_assets.core.data.sources.simulated import SimulatedSource
from aqi_assets.core.data.station_graph import build_station_graph

SPEC = ForecastSpec()


@pytest.fixture(scope="module")
def source():
    return SimulatedSource(seed=3, n_stations=4, start=date(2024, 1, 1), end=date(2024, 2, 1))


@pytest.fixture(scope="module")
def frame(source):
    return source.read_range(date(2024, 1, 1), date(2024, 1, 10))


def test_panel_lays_rows_on_a_full_hourly_grid():
    frame = pd.DataFrame({
        "timestamp": pd.to_datetime(["2024-01-01 00:00", "2024-01-01 00:00", "2024-01-01 02:00"]),
        "station": ["b", "a", "a"], "pm25": [5.0, 7.0, np.nan], "wind_speed": [2.0, 1.0, 1.0],
        "wind_direction": ["N", "E", None],
    })
    panel = Panel.from_frame(frame)
    assert panel.stations == ("a", "b") and panel.shape == (3, 2)
    assert panel.present.tolist() == [[True, True], [False, False], [True, False]]
    assert panel["pm25"][0].tolist() == [7.0, 5.0] and np.isnan(panel["pm25"][2, 0])
    # wind from north at 2 m/s blows towards the south: v = -2; from east at 1 m/s: u = -1
    assert panel["wind_v"][0, 1] == pytest.approx(-2.0) and panel["wind_u"][0, 1] == pytest.approx(0.0, abs=1e-12)
    assert panel["wind_u"][0, 0] == pytest.approx(-1.0)
    assert np.isnan(panel["wind_from_deg"][2, 0])


def test_tabular_features_never_read_later_hours(source, frame):
    graph = build_station_graph(source.stations(), k=2)
    cut = pd.Timestamp("2024-01-06 12:00")
    before = tabular_features(Panel.from_frame(frame[frame["timestamp"] <= cut]), SPEC, graph)
    changed = frame.copy()
    later = changed["timestamp"] > cut
    changed.loc[later, ["pm25", "pm10", "dew_point", "wind_speed"]] *= 3.0
    after = tabular_features(Panel.from_frame(changed), SPEC, graph)
    rows = len(before["y_now"])
    assert len(before) > 60
    for name in before:
        np.testing.assert_array_equal(before[name], after[name][:rows], err_msg=name)


def test_neighbour_and_upwind_features_weight_the_right_stations():
    stations = pd.DataFrame({"station": ["C", "N", "E"], "latitude": [40.0, 40.1, 40.0],
                             "longitude": [116.0, 116.0, 116.1306]})
    graph = build_station_graph(stations, k=2)
    times = pd.date_range("2024-01-01", periods=3, freq="h")
    values = {"C": 10.0, "N": 30.0, "E": 60.0}
    frame = pd.DataFrame([(t, s, v, 2.0, "N") for t in times for s, v in values.items()],
                         columns=["timestamp", "station", "pm25", "wind_speed", "wind_direction"])
    f = tabular_features(Panel.from_frame(frame, stations=["C", "N", "E"]), SPEC, graph)
    # C's neighbours N and E are equidistant (11.1 km): plain mean; wind from the north: only N is upwind
    assert f["nb_mean"][2, 0] == pytest.approx(45.0, abs=0.05)
    assert f["upwind_mean"][2, 0] == pytest.approx(30.0)
    assert f["nn1_value"][2, 0] in (30.0, 60.0)
    assert f["net_mean"][2].tolist() == pytest.approx([100 / 3] * 3)
    assert f["net_max"][2, 0] == 60.0 and f["net_min"][2, 0] == 10.0
    assert f["y_minus_net"][2, 0] == pytest.approx(10.0 - 100 / 3)


def test_tabular_features_without_a_graph_keep_network_statistics(frame):
    f = tabular_features(Panel.from_frame(frame), SPEC, None)
    assert "net_mean" in f and "nb_mean" not in f and "upwind_mean" not in f


def test_sequence_inputs_fill_gaps_from_the_past_only(source, frame):
    panel = Panel.from_frame(frame)
    rows = np.zeros(panel.shape[0], dtype=bool)
    rows[:120] = True
    scaler = SequenceScaler(SPEC).fit(panel, rows)
    x = scaler.inputs(panel)
    assert x.shape == (panel.shape[0], 4, scaler.n_channels) and np.isfinite(x).all()
    pm25 = scaler.channel_names.index("pm25")
    # a gap in the middle is filled with the previous hour's value, not the next one
    gapped = frame.copy()
    hour = pd.Timestamp("2024-01-05 10:00")
    gapped.loc[(gapped["timestamp"] == hour) & (gapped["station"] == "S0001"), "pm25"] = np.nan
    gp = Panel.from_frame(gapped)
    t = gp.times.get_loc(hour)
    xg = scaler.inputs(gp)
    assert xg[t, 0, pm25] == pytest.approx(x[t - 1, 0, pm25])
    observed = len(scaler.channel_names)  # the first observed-mask channel is pm25's
    assert xg[t, 0, observed] == 0.0 and x[t, 0, observed] == 1.0
    # and changing later hours leaves earlier inputs untouched
    later = gapped.copy()
    later.loc[later["timestamp"] > hour, "pm25"] += 50
    np.testing.assert_array_equal(scaler.inputs(Panel.from_frame(later))[: t + 1], xg[: t + 1])


def test_scaler_statistics_come_from_training_rows_and_round_trip(frame):
    panel = Panel.from_frame(frame)
    rows = np.zeros(panel.shape[0], dtype=bool)
    rows[:48] = True
    scaler = SequenceScaler(SPEC).fit(panel, rows)
    expected = np.nanmean(np.log1p(panel["pm25"][:48]))
    assert scaler.mean["pm25"] == pytest.approx(expected)
    again = SequenceScaler.from_dict(scaler.to_dict())
    np.testing.assert_array_equal(again.inputs(panel), scaler.inputs(panel))
