"""A network is what its data says: headers, units, absent and extra columns, and the checks that follow."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from aqi_assets.core.configuration.config import QualitySettings
from aqi_assets.core.data.network import Network, read_header
from aqi_assets.core.data.sources import SourceError, source_from_spec
from aqi_assets.core.data.units import GAS_UG_PER_PPB, UnitError, conversion
from aqi_assets.core.data.validation import fit_for_training, validate_day
from aqi_assets_tests.factories import STATIONS, canonical_rows

DAY = date(2024, 3, 2)


def outcome(outcomes, name):
    return next(o for o in outcomes if o.name == name)


def write_table(directory, frame: pd.DataFrame, name: str = "obs.csv") -> None:
    directory.mkdir(parents=True, exist_ok=True)
    frame.to_csv(directory / name, index=False, date_format="%Y-%m-%d %H:%M")


def small_network(rows: pd.DataFrame) -> pd.DataFrame:
    """NO2, temperature and wind only, wind direction in degrees, the way a small city network reports."""
    out = rows[["timestamp", "station", "no2", "temperature", "wind_speed"]].copy()
    out["wind_direction"] = rows["wind_direction"].map({p: i * 22.5 for i, p in enumerate(
        ("N", "NNE", "NE", "ENE", "E", "ESE", "SE", "SSE", "S", "SSW", "SW", "WSW", "W", "WNW", "NW", "NNW"))})
    return out


@pytest.mark.parametrize("header, expected", [
    ("pm25", ("pm25", None)), ("PM2.5", ("pm25", None)), ("NO2 (ppb)", ("no2", "ppb")),
    ("co[ppm]", ("co", "ppm")), ("temperature_F", ("temperature", "F")), ("RH", ("humidity", None)),
    ("wd", ("wind_direction", None)), ("WS [km/h]", ("wind_speed", "km/h")), ("Timestamp", ("timestamp", None)),
    ("site_id", ("station", None)), ("flag", (None, None)), ("battery_voltage", (None, None)),
])
def test_headers_are_read_with_aliases_and_units(header, expected):
    assert read_header(header) == expected


@pytest.mark.parametrize("column, unit, value, canonical", [
    ("no2", "ppb", 10.0, 10 * GAS_UG_PER_PPB["no2"]), ("co", "ppm", 1.0, 1000 * GAS_UG_PER_PPB["co"]),
    ("co", "mg/m3", 1.2, 1200.0), ("temperature", "F", 50.0, 10.0), ("temperature", "K", 283.15, 10.0),
    ("pressure", "kPa", 101.3, 1013.0), ("wind_speed", "km/h", 36.0, 10.0), ("wind_speed", "knots", 10.0, 5.14444),
    ("humidity", "fraction", 0.5, 50.0), ("rain", "in", 1.0, 25.4), ("pm25", "µg/m³", 12.0, 12.0),
])
def test_units_convert_to_the_canonical_unit(column, unit, value, canonical):
    assert conversion(column, unit).apply(np.array([value]))[0] == pytest.approx(canonical, rel=1e-4)


def test_unknown_units_are_refused_naming_column_and_accepted_units():
    with pytest.raises(UnitError, match=r"unknown unit 'furlongs' for no2 .*accepted: mg/m3, ppb, ppm, ug/m3"):
        conversion("no2", "furlongs")
    with pytest.raises(UnitError, match="unknown unit 'ppb' for pm25"):  # no molar mass for particles
        conversion("pm25", "ppb")


def test_a_small_network_in_its_own_units_is_read_converted_and_passes_every_check(tmp_path):
    rows = canonical_rows(days=3)
    table = small_network(rows)
    table["no2"] = table["no2"] / GAS_UG_PER_PPB["no2"]  # the network reports ppb
    table = table.rename(columns={"no2": "NO2 (ppb)", "temperature": "Temp", "wind_speed": "WS",
                                  "wind_direction": "WD"})
    table["battery"] = "ok"
    write_table(tmp_path, table)
    source = source_from_spec(f"csv:{tmp_path}")
    network = source.network()
    assert network.measured == ("no2", "temperature", "wind_speed", "wind_direction")
    assert network.not_measured == ("pm25", "pm10", "so2", "co", "o3", "pressure", "dew_point", "humidity", "rain")
    assert network.extra == ("battery",) and network.conversions == ("no2: ppb → µg/m³",)
    day = source.read_day(DAY)
    assert list(day.columns) == ["timestamp", "station", "no2", "temperature", "wind_speed", "wind_direction",
                                 "battery"]
    expected = rows[rows["timestamp"].dt.date == DAY]["no2"].to_numpy()
    assert np.allclose(day["no2"].to_numpy(), expected, atol=1e-9)
    assert day["wind_direction"].dtype == "float64" and day["battery"].eq("ok").all()

    outcomes = validate_day(day, DAY, source.station_ids(), QualitySettings(), "no2", network)
    assert [o.name for o in outcomes if not o.passed] == []
    assert outcome(outcomes, "missing_share_within_limit").figures["missing_share"] == 0.0
    assert outcome(outcomes, "missing_share_within_limit").figures["columns_checked"] == 4


def test_the_checks_follow_the_configured_target_and_limits():
    rows = small_network(canonical_rows(start=DAY, days=1))
    rows.loc[rows.index[:30], "no2"] = np.nan  # 30 of 72 target readings missing: 42 %
    network = Network.of_frame(rows)
    passed = validate_day(rows, DAY, list(STATIONS), QualitySettings(), "no2", network)
    assert outcome(passed, "missing_share_within_limit").passed
    strict = QualitySettings(max_target_missing_share=0.4)
    result = outcome(validate_day(rows, DAY, list(STATIONS), strict, "no2", network), "missing_share_within_limit")
    assert not result.passed
    assert "target 42% missing (limit 40%, quality.max_target_missing_share)" in result.summary
    assert "(30 readings)" in result.summary
    unmeasured = outcome(validate_day(rows, DAY, list(STATIONS), QualitySettings(), "pm25", network),
                         "missing_share_within_limit")
    assert not unmeasured.passed and "the target pm25 (training.target) is not measured" in unmeasured.summary


def test_wind_direction_takes_degrees_and_compass_names_and_refuses_400_degrees(tmp_path):
    rows = small_network(canonical_rows(days=3)).astype({"wind_direction": object})
    rows.loc[rows.index[:4], "wind_direction"] = ["NNE", "sw", "  W", "359.9"]
    at = (rows["timestamp"] == pd.Timestamp("2024-03-02 04:00")) & (rows["station"] == "Bravo")
    rows.loc[at, "wind_direction"] = 400
    write_table(tmp_path, rows)
    source = source_from_spec(f"csv:{tmp_path}")
    first = source.read_day(date(2024, 3, 1))
    assert first["wind_direction"].iloc[:4].tolist() == [22.5, 225.0, 270.0, 359.9]
    result = outcome(validate_day(source.read_day(DAY), DAY, source.station_ids(), network=source.network()),
                     "values_physically_possible")
    assert not result.passed and result.blocking
    problem = result.problems[0]
    assert (problem.column, problem.station, problem.rows) == ("wind_direction", "Bravo", ("2024-03-02 04:00",))
    assert "above the physical limit 360" in problem.detail


def test_a_wind_direction_that_is_neither_degrees_nor_compass_is_named(tmp_path):
    rows = small_network(canonical_rows(days=3)).astype({"wind_direction": object})
    rows.loc[(rows["timestamp"] == pd.Timestamp("2024-03-02 09:00")) & (rows["station"] == "Alpha"),
             "wind_direction"] = "variable"
    write_table(tmp_path, rows)
    source = source_from_spec(f"csv:{tmp_path}")
    result = outcome(validate_day(source.read_day(DAY), DAY, source.station_ids(), network=source.network()),
                     "schema_matches")
    assert not result.passed
    assert result.problems[0].column == "wind_direction" and "'variable'" in result.problems[0].detail
    assert "degrees 0–360 or a 16-point compass name" in result.problems[0].detail


def test_an_unknown_unit_suffix_in_a_header_is_named(tmp_path):
    table = small_network(canonical_rows(days=2)).rename(columns={"no2": "no2[furlongs]"})
    write_table(tmp_path, table)
    with pytest.raises(SourceError, match=r"obs.csv: header 'no2\[furlongs\]': unknown unit 'furlongs' for no2"):
        source_from_spec(f"csv:{tmp_path}").read_day(date(2024, 3, 1))


def test_a_file_whose_only_pollutant_column_is_empty_is_named(tmp_path):
    table = small_network(canonical_rows(days=2))
    table["no2"] = np.nan
    write_table(tmp_path, table)
    with pytest.raises(SourceError, match=r"pollutant column\(s\) no2 hold no value in any file \(obs.csv\)"):
        source_from_spec(f"csv:{tmp_path}").network()


def test_a_column_empty_in_every_file_is_not_measured_and_not_missing(tmp_path):
    table = small_network(canonical_rows(days=3))
    for column in ("pm25", "pm10", "pressure"):
        table[column] = np.nan  # a template exported with columns the network never fills
    write_table(tmp_path, table)
    source = source_from_spec(f"csv:{tmp_path}")
    network = source.network()
    assert network.empty == ("pm25", "pm10", "pressure") and "pm25" in network.not_measured
    assert "pm25" not in source.read_day(DAY).columns
    outcomes = validate_day(source.read_day(DAY), DAY, source.station_ids(), target="no2", network=network)
    assert fit_for_training(outcomes)


def test_files_with_different_columns_make_one_network(tmp_path):
    rows = canonical_rows(days=3)
    day1 = rows[rows["timestamp"].dt.date == date(2024, 3, 1)]
    later = rows[rows["timestamp"].dt.date > date(2024, 3, 1)]
    write_table(tmp_path, day1[["timestamp", "station", "no2"]], "a.csv")
    write_table(tmp_path, later[["timestamp", "station", "no2", "o3"]], "b.csv")
    source = source_from_spec(f"csv:{tmp_path}")
    assert source.network().measured == ("no2", "o3")
    first = source.read_day(date(2024, 3, 1))
    assert list(first.columns) == ["timestamp", "station", "no2", "o3"] and first["o3"].isna().all()
    assert source.read_day(DAY)["o3"].notna().all()


def test_timestamps_with_an_offset_keep_their_wall_clock_time(tmp_path):
    table = small_network(canonical_rows(days=2))
    table["timestamp"] = table["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S+08:00")
    write_table(tmp_path, table)
    day = source_from_spec(f"csv:{tmp_path}").read_day(date(2024, 3, 1))
    assert day["timestamp"].dtype == "datetime64[ns]" and day["timestamp"].min() == pd.Timestamp("2024-03-01 00:00")
    assert len(day) == 72


def test_a_stuck_sensor_is_a_warning_naming_station_column_and_hours():
    rows = canonical_rows(start=DAY, days=1)
    stuck = (rows["station"] == "Charlie") & rows["timestamp"].dt.hour.between(3, 17)
    rows.loc[stuck, "pm25"] = 41.0
    result = outcome(validate_day(rows, DAY, list(STATIONS)), "no_stuck_sensors")
    assert not result.passed and not result.blocking
    problem = result.problems[0]
    assert (problem.column, problem.station, problem.count) == ("pm25", "Charlie", 15)
    assert problem.rows == ("2024-03-02 03:00", "17:00") and "the same value 41 for 15 hours" in problem.detail
    assert fit_for_training(validate_day(rows, DAY, list(STATIONS)))  # a warning never blocks
    # low concentrations at the instrument's resolution and rain are not flagged
    rows.loc[stuck, "pm25"] = 3.0
    rows["rain"] = 0.0
    assert outcome(validate_day(rows, DAY, list(STATIONS)), "no_stuck_sensors").passed
