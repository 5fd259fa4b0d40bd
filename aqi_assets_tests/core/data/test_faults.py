"""Fault injection: each mode changes exactly one station-column as documented, reproducibly."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd
import pytest

from aqi_assets.core.data.faults import BENCHMARK_FAULTS, Fault, benchmark_fault, seeded_faults


def hourly(stations=("A", "B", "C"), days=4, columns=("pm25", "pm10", "wind_speed"), seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    stamps = pd.date_range("2024-03-01", periods=24 * days, freq="h")
    parts = [pd.DataFrame({"timestamp": stamps, "station": s,
                           **{c: rng.gamma(4.0, 10.0, len(stamps)) for c in columns}}) for s in stations]
    return pd.concat(parts, ignore_index=True)


def test_step_scales_one_station_column_from_its_start():
    frame = hourly()
    faulty = Fault("step", "B", "pm25", date(2024, 3, 3), factor=1.3).apply(frame)
    changed = ~np.isclose(faulty["pm25"], frame["pm25"])
    after = (frame["station"] == "B") & (frame["timestamp"] >= "2024-03-03")
    assert (changed == after).all()
    np.testing.assert_allclose(faulty.loc[after, "pm25"], 1.3 * frame.loc[after, "pm25"])
    pd.testing.assert_frame_equal(faulty.drop(columns="pm25"), frame.drop(columns="pm25"))


def test_spread_keeps_each_days_mean_and_widens_its_std():
    frame = hourly(columns=("pm10",))
    frame["pm10"] += 200.0  # far from zero, so no clipping
    faulty = Fault("spread", "A", "pm10", date(2024, 3, 2), factor=math.sqrt(2)).apply(frame)
    rows = (frame["station"] == "A") & (frame["timestamp"] >= "2024-03-02")
    day = frame.loc[rows, "timestamp"].dt.date
    before = frame.loc[rows, "pm10"].groupby(day)
    after = faulty.loc[rows, "pm10"].groupby(day)
    np.testing.assert_allclose(after.mean(), before.mean())
    np.testing.assert_allclose(after.std() / before.std(), math.sqrt(2))


def test_spread_never_makes_a_pollutant_negative():
    frame = hourly(columns=("pm10",))
    faulty = Fault("spread", "A", "pm10", date(2024, 3, 1), factor=3.0).apply(frame)
    assert faulty["pm10"].min() >= 0.0


def test_stuck_repeats_the_first_reading_for_its_hours_gaps_included():
    frame = hourly(columns=("no2", "wind_speed"))
    frame.loc[(frame["station"] == "C") & (frame["timestamp"] == "2024-03-02 05:00"), "no2"] = np.nan
    fault = Fault("stuck", "C", "no2", date(2024, 3, 2), hours=30)
    faulty = fault.apply(frame)
    rows = (frame["station"] == "C") & (frame["timestamp"] >= "2024-03-02") & (frame["timestamp"] < "2024-03-03 06:00")
    first = frame.loc[rows, "no2"].iloc[0]
    assert (faulty.loc[rows, "no2"] == first).all() and rows.sum() == 30
    assert fault.last_day == date(2024, 3, 3)
    np.testing.assert_array_equal(faulty.loc[~rows, "no2"].to_numpy(), frame.loc[~rows, "no2"].to_numpy())


def test_missing_column_is_a_clear_error():
    with pytest.raises(ValueError, match="does not measure"):
        Fault("step", "A", "o3", date(2024, 3, 1), factor=1.3).apply(hourly())
    with pytest.raises(ValueError, match="mode"):
        Fault("drop", "A", "pm25", date(2024, 3, 1))


def test_seeded_cases_are_reproducible_distinct_and_documented_sizes():
    stations = [f"S{i}" for i in range(12)]
    a = seeded_faults("pm25_step", stations, date(2016, 3, 1), date(2017, 1, 31), cases=20, seed=7)
    b = seeded_faults("pm25_step", stations, date(2016, 3, 1), date(2017, 1, 31), cases=20, seed=7)
    assert a == b and len({(f.station, f.start) for f in a}) == 20
    assert all(f.factor == 1.3 and f.column == "pm25" and f.mode == "step" for f in a)
    assert a != seeded_faults("pm25_step", stations, date(2016, 3, 1), date(2017, 1, 31), cases=20, seed=8)
    stuck = seeded_faults("stuck", ["A", "B"], date(2024, 1, 1), date(2024, 1, 31), cases=10, columns=["no2", "o3"])
    assert {f.column for f in stuck} <= {"no2", "o3"} and all(24 <= f.hours <= 72 for f in stuck)
    assert benchmark_fault("pm10_spread", "A", date(2024, 1, 1)).factor == pytest.approx(math.sqrt(2))
    assert list(BENCHMARK_FAULTS) == ["pm25_step", "wind_speed_step", "pm10_spread", "stuck", "stuck_at_zero", "silent"]


def test_new_kinds_leave_the_existing_kinds_cases_where_they_were():
    beijing = ["Aotizhongxin", "Changping", "Dingling", "Dongsi", "Guanyuan", "Gucheng", "Huairou",
               "Nongzhanguan", "Shunyi", "Tiantan", "Wanliu", "Wanshouxigong"]
    # the first cases of bench/results/triggers.json (seeds 2015..2018), drawn before the dead and silent kinds
    first = {kind: seeded_faults(kind, beijing, date(2015, 3, 2), date(2017, 2, 21), seed=2015 + i)[0]
             for i, kind in enumerate(["pm25_step", "wind_speed_step", "pm10_spread", "stuck"])}
    assert (first["pm25_step"].station, first["pm25_step"].start) == ("Nongzhanguan", date(2015, 4, 5))
    assert all(f.start.year == 2015 for f in first.values())


def test_a_dead_sensor_reads_its_value_and_a_silent_one_nothing_for_its_hours():
    frame = hourly(columns=("no2", "pm25"))
    rows = (frame["station"] == "B") & (frame["timestamp"] >= "2024-03-02") & (frame["timestamp"] < "2024-03-04")
    dead = benchmark_fault("stuck_at_zero", "B", date(2024, 3, 2), column="no2", hours=48).apply(frame)
    assert (dead.loc[rows, "no2"] == 0.0).all() and (dead.loc[~rows, "no2"] == frame.loc[~rows, "no2"]).all()
    silent = benchmark_fault("silent", "B", date(2024, 3, 2), column="no2", hours=48)
    out = silent.apply(frame)
    assert out.loc[rows, "no2"].isna().all() and out.loc[~rows, "no2"].notna().all()
    assert len(out) == len(frame) and (out["pm25"] == frame["pm25"]).all()  # the rows and other columns stay
    assert silent.last_day == date(2024, 3, 3) and silent.describe()["hours"] == 48
    drawn = seeded_faults("silent", ["A", "B"], date(2024, 1, 1), date(2024, 1, 31), cases=10, columns=["no2"])
    assert all(f.mode == "silent" and 48 <= f.hours <= 120 for f in drawn)
