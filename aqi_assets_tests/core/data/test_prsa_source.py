"""The real Beijing files through the ``prsa:`` source: every day, every station, every row."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from aqi_assets.core.data.sources import source_from_spec
from aqi_assets.core.data.validation import fit_for_training, validate_day

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def beijing(beijing_dir):
    return source_from_spec(f"prsa:{beijing_dir}")


def test_all_files_load_with_every_row(beijing):
    assert beijing.first_day() == date(2013, 3, 1)
    assert beijing.last_day() == date(2017, 2, 28)
    frame = beijing.read_range(beijing.first_day(), beijing.last_day())
    assert len(frame) == 420_768
    assert frame["station"].nunique() == 12
    assert frame.duplicated(["station", "timestamp"]).sum() == 0


def test_every_day_has_12_stations_by_24_hours(beijing):
    frame = beijing.read_range(beijing.first_day(), beijing.last_day())
    per_day = frame.groupby(frame["timestamp"].dt.date).agg(rows=("station", "size"), stations=("station", "nunique"))
    assert len(per_day) == 1461  # 2013-03-01 .. 2017-02-28, leap day 2016-02-29 included
    assert per_day.index[0] == date(2013, 3, 1) and per_day.index[-1] == date(2017, 2, 28)
    assert (per_day["rows"] == 288).all() and (per_day["stations"] == 12).all()


def test_days_read_singly_match_and_pass_the_gates(beijing):
    stations = beijing.station_ids()
    assert len(stations) == 12 and "Aotizhongxin" in stations
    for day in (date(2013, 3, 1), date(2016, 2, 29), date(2017, 2, 28)):
        frame = beijing.read_day(day)
        assert len(frame) == 288
        assert frame["timestamp"].min() == pd.Timestamp(day)
        assert fit_for_training(validate_day(frame, day, stations))
    first = beijing.read_day(date(2013, 3, 1))
    row = first[(first["station"] == "Aotizhongxin") & (first["timestamp"] == pd.Timestamp("2013-03-01 01:00"))]
    # values as in the file: 2,2013,3,1,1,8,8,4,7,300,77,-1.1,1023.2,-18.2,0,"N",4.7
    assert row[["pm25", "pm10", "co", "temperature", "pressure"]].iloc[0].tolist() == [8.0, 8.0, 300.0, -1.1, 1023.2]
    assert row["wind_direction"].iloc[0] == 0.0  # "N", as degrees
