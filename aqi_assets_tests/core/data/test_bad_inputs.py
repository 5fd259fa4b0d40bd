"""Ten kinds of bad input: each gives a failed check or an error that names the problem."""

from __future__ import annotations

import gzip
from datetime import date

import numpy as np
import pandas as pd
import pytest

from aqi_assets.core.data.network import Network
from aqi_assets.core.data.sources import SourceError, source_from_spec
from aqi_assets.core.data.validation import fit_for_training, validate_day
from aqi_assets_tests.factories import STATIONS, canonical_rows, write_csv_long, write_prsa

DAY = date(2024, 3, 2)


def outcome(outcomes, name):
    return next(o for o in outcomes if o.name == name)


def failed_names(outcomes):
    return {o.name for o in outcomes if not o.passed}


def csv_source_with(tmp_path, mutate):
    frame = canonical_rows(days=3)
    frame = mutate(frame)
    write_csv_long(tmp_path, frame)
    return source_from_spec(f"csv:{tmp_path}")


def test_clean_day_passes_every_check(tmp_path):
    source = csv_source_with(tmp_path, lambda f: f)
    outcomes = validate_day(source.read_day(DAY), DAY, source.station_ids())
    assert failed_names(outcomes) == set()
    assert fit_for_training(outcomes)


def test_missing_required_column_in_file_is_named(tmp_path):
    frame = canonical_rows(days=1)
    write_csv_long(tmp_path, frame.drop(columns=["station"]))
    with pytest.raises(SourceError, match=r"observations_2024-03-01.csv: missing required column\(s\) station"):
        source_from_spec(f"csv:{tmp_path}").read_day(date(2024, 3, 1))


def test_measured_column_missing_from_a_frame_fails_schema_check():
    frame = canonical_rows(days=1)
    network = Network.of_frame(frame)
    result = outcome(validate_day(frame.drop(columns=["o3"]), date(2024, 3, 1), list(STATIONS), network=network),
                     "schema_matches")
    assert not result.passed and result.blocking
    assert result.problems[0].column == "o3" and "missing" in result.problems[0].detail


def test_wrong_dtype_is_kept_as_received_and_named(tmp_path):
    def corrupt(frame):
        frame["pm25"] = frame["pm25"].astype(object)
        frame.loc[(frame["station"] == "Bravo") & (frame["timestamp"] == pd.Timestamp("2024-03-02 05:00")), "pm25"] = "n/a?"
        return frame

    source = csv_source_with(tmp_path, corrupt)
    day_frame = source.read_day(DAY)
    # the raw text is kept, not replaced by NaN
    assert "n/a?" in set(day_frame["pm25"].astype(str))
    result = outcome(validate_day(day_frame, DAY, source.station_ids()), "schema_matches")
    assert not result.passed
    problem = result.problems[0]
    assert (problem.column, problem.station, problem.count) == ("pm25", "Bravo", 1)
    assert problem.rows == ("2024-03-02 05:00",) and "'n/a?'" in problem.detail
    # other days of the same file parse as numbers
    assert source.read_day(date(2024, 3, 1))["pm25"].dtype == "float64"


def test_negative_pm25_is_named(tmp_path):
    def corrupt(frame):
        frame.loc[(frame["station"] == "Alpha") & (frame["timestamp"].dt.hour.isin([3, 4])) &
                  (frame["timestamp"].dt.date == DAY), "pm25"] = -7.0
        return frame

    source = csv_source_with(tmp_path, corrupt)
    day_frame = source.read_day(DAY)
    result = outcome(validate_day(day_frame, DAY, source.station_ids()), "values_physically_possible")
    assert not result.passed and result.blocking
    problem = result.problems[0]
    assert (problem.column, problem.station, problem.count) == ("pm25", "Alpha", 2)
    assert "negative concentration" in problem.detail and "-7" in problem.detail
    assert problem.rows == ("2024-03-02 03:00", "2024-03-02 04:00")
    assert (day_frame["pm25"] == -7.0).sum() == 2  # kept as received


def test_duplicate_rows_are_named(tmp_path):
    def corrupt(frame):
        extra = frame[(frame["station"] == "Charlie") & (frame["timestamp"] == pd.Timestamp("2024-03-02 10:00"))]
        return pd.concat([frame, extra], ignore_index=True)

    source = csv_source_with(tmp_path, corrupt)
    day_frame = source.read_day(DAY)
    assert len(day_frame) == 3 * 24 + 1  # nothing dropped
    result = outcome(validate_day(day_frame, DAY, source.station_ids()), "no_duplicate_rows")
    assert not result.passed
    assert result.problems[0].station == "Charlie" and result.problems[0].count == 2
    assert result.problems[0].rows == ("2024-03-02 10:00", "2024-03-02 10:00")


def test_out_of_partition_and_off_hour_timestamps_are_named():
    frame = canonical_rows(start=DAY, days=1)
    frame.loc[0, "timestamp"] = pd.Timestamp("2024-03-03 01:00")
    frame.loc[5, "timestamp"] = pd.Timestamp("2024-03-02 07:30")
    result = outcome(validate_day(frame, DAY, list(STATIONS)), "timestamps_within_partition")
    assert not result.passed
    details = {p.detail: p for p in result.problems}
    outside = details["timestamp outside the partition 2024-03-02"]
    assert outside.rows == ("2024-03-03 01:00",) and outside.station == frame.loc[0, "station"]
    off_hour = next(p for p in result.problems if p.detail.startswith("timestamp not on the hour"))
    assert off_hour.rows == ("2024-03-02 07:30",) and "average readings taken more often" in off_hour.detail


def test_unknown_and_missing_stations_are_named(tmp_path):
    def corrupt(frame):
        frame.loc[frame["station"] == "Charlie", "station"] = "Zulu"
        return frame

    source = csv_source_with(tmp_path, corrupt)  # stations.csv still lists Alpha, Bravo, Charlie
    assert source.station_ids() == ["Alpha", "Bravo", "Charlie"]
    result = outcome(validate_day(source.read_day(DAY), DAY, source.station_ids()), "stations_match_network")
    assert not result.passed
    by_station = {p.station: p for p in result.problems}
    assert by_station["Charlie"].detail == "expected station has no rows"
    assert by_station["Zulu"].count == 24 and "not in the network" in by_station["Zulu"].detail


def test_empty_file_is_an_error_naming_the_file(tmp_path):
    (tmp_path / "observations_empty.csv").write_text("")
    with pytest.raises(SourceError, match=r"observations_empty.csv: file is empty"):
        source_from_spec(f"csv:{tmp_path}").read_day(DAY)


def test_truncated_gzip_fails_later_days_only(tmp_path):
    frame = canonical_rows(days=3)
    paths = write_prsa(tmp_path, frame)
    data = paths["Bravo"].read_bytes()
    # keep the compressed prefix holding roughly the first day and a half
    plain = gzip.decompress(data)
    cut_plain = plain[: int(len(plain) * 0.55)]
    compressed = gzip.compress(plain)
    truncated = compressed[: int(len(compressed) * 0.6)]
    paths["Bravo"].write_bytes(truncated)
    assert len(cut_plain) > 0
    source = source_from_spec(f"prsa:{tmp_path}")
    first = source.read_day(date(2024, 3, 1))  # before the cut: unaffected
    assert len(first) == 3 * 24
    with pytest.raises(SourceError, match=r"PRSA_Data_Bravo_.*truncated or corrupt gzip stream.*readable rows end at"):
        source.read_day(date(2024, 3, 3))


def test_all_nan_day_fails_missing_share(tmp_path):
    def corrupt(frame):
        on_day = frame["timestamp"].dt.date == DAY
        for column in ("pm25", "pm10", "so2", "no2", "co", "o3", "temperature", "pressure",
                       "dew_point", "rain", "wind_speed"):
            frame.loc[on_day, column] = np.nan
        frame.loc[on_day, "wind_direction"] = None
        return frame

    source = csv_source_with(tmp_path, corrupt)
    outcomes = validate_day(source.read_day(DAY), DAY, source.station_ids())
    result = outcome(outcomes, "missing_share_within_limit")
    assert not result.passed and result.figures["missing_share"] == 1.0
    overall = next(p for p in result.problems if p.column is None)
    assert "100% of the 864 readings of 12 measured column(s) missing" in overall.detail
    assert overall.count == 864 and overall.unit == "reading" and "(864 readings)" in overall.describe()
    assert not fit_for_training(outcomes)
    # the neighbouring day is fine
    assert fit_for_training(validate_day(source.read_day(date(2024, 3, 1)), date(2024, 3, 1), source.station_ids()))


def test_non_utf8_bytes_fail_their_day_only(tmp_path):
    frame = canonical_rows(days=3)
    paths = write_prsa(tmp_path, frame, gz=False)
    lines = paths["Alpha"].read_bytes().split(b"\n")
    lines[30] = lines[30].replace(b"Alpha", b"Alph\xff\xfe")  # line 31: 2024-03-02 05:00
    paths["Alpha"].write_bytes(b"\n".join(lines))
    source = source_from_spec(f"prsa:{tmp_path}")
    with pytest.raises(SourceError, match=r"line 31, byte \d+\): bytes that are not UTF-8"):
        source.read_day(DAY)
    assert len(source.read_day(date(2024, 3, 3))) == 3 * 24


def test_unreadable_directory_and_spec_are_named(tmp_path):
    with pytest.raises(SourceError, match="is not a directory"):
        source_from_spec(f"prsa:{tmp_path / 'nope'}")
    with pytest.raises(SourceError, match="unknown AQI_SOURCE 'ftp:x'"):
        source_from_spec("ftp:x")
