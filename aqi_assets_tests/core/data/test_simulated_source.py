"""Tests of the embedded simulated source: schema, determinism, realism, scenarios, spec parsing."""

from __future__ import annotations

import hashlib
import math
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from aqi_assets.core.data.feature_stats import compute_feature_stats
from aqi_assets.core.data.schema import COMPASS_DEGREES, PHYSICAL_RANGES, POLLUTANTS
from aqi_assets.core.data.sources import source_from_spec
from aqi_assets.core.data.sources.base import SourceError
from aqi_assets.core.data.sources.simulated import (
    DEFAULT_COLUMNS,
    DEFAULT_MAGNITUDES,
    SCENARIOS,
    DriftScenario,
    SimulatedSource,
)

YEAR_START, YEAR_END = date(2024, 1, 1), date(2024, 12, 31)


@pytest.fixture(scope="module")
def year() -> pd.DataFrame:
    """A full year of the default 12-station city (about a second to generate)."""
    return SimulatedSource(start=YEAR_START, end=YEAR_END).read_range(YEAR_START, YEAR_END)


def _wide(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    return frame.pivot(index="timestamp", columns="station", values=column)


def _positions_km(source: SimulatedSource) -> tuple[np.ndarray, np.ndarray]:
    """Station positions east and north of the network's mean, in km, from its coordinates."""
    st = source.stations()
    lat0 = st["latitude"].mean()
    x = (st["longitude"] - st["longitude"].mean()).to_numpy() * 111.2 * math.cos(math.radians(lat0))
    y = (st["latitude"] - lat0).to_numpy() * 111.2
    return x, y


def _city_wind(frame: pd.DataFrame) -> pd.DataFrame:
    """Hourly network-mean wind vector (u east, v north: where the air moves to) and speed."""
    rad = np.radians(frame["wind_direction"].astype(float))
    vectors = pd.DataFrame({
        "timestamp": frame["timestamp"],
        "u": -frame["wind_speed"] * np.sin(rad),
        "v": -frame["wind_speed"] * np.cos(rad),
        "speed": frame["wind_speed"],
    })
    return vectors.groupby("timestamp").mean()


# ------------------------------------------------------------------------------ the frame


def test_day_has_every_station_hour_in_canonical_schema():
    source = SimulatedSource()
    frame = source.read_day(date(2024, 2, 14))

    assert list(frame.columns) == ["timestamp", "station", *DEFAULT_COLUMNS]
    assert "humidity" not in frame.columns  # the default network is Beijing's
    assert len(frame) == 12 * 24
    assert frame["timestamp"].dtype == "datetime64[ns]"
    assert frame["station"].dtype == object
    assert all(frame[c].dtype == "float64" for c in DEFAULT_COLUMNS)
    ordered = frame.sort_values(["timestamp", "station"], kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(frame, ordered)
    assert frame.groupby("station").size().eq(24).all()
    expected_hours = pd.date_range("2024-02-14", periods=24, freq="h")
    assert (np.sort(frame["timestamp"].unique()) == expected_hours.to_numpy()).all()
    assert frame["timestamp"].dt.tz is None
    assert sorted(frame["station"].unique()) == [f"S{i:04d}" for i in range(1, 13)]
    assert set(frame["wind_direction"].dropna()) <= set(COMPASS_DEGREES.values())
    assert (frame["wind_direction"].isna() == frame["wind_speed"].isna()).all()


def test_columns_key_gives_a_network_of_those_measurements_only():
    source = SimulatedSource.from_spec("seed=3,stations=4,start=2024-01-01,end=2024-03-01,columns=pm25+humidity")
    frame = source.read_day(date(2024, 2, 14))
    assert list(frame.columns) == ["timestamp", "station", "pm25", "humidity"]
    assert source.network().measured == ("pm25", "humidity")
    assert "columns=pm25+humidity" in source.spec
    humidity = frame["humidity"].dropna()
    assert len(humidity) > 80 and humidity.between(0, 100).all() and humidity.std() > 1
    with pytest.raises(SourceError, match="at least one pollutant"):
        SimulatedSource.from_spec("columns=temperature")
    with pytest.raises(SourceError, match="unknown measurement"):
        SimulatedSource.from_spec("columns=pm25+ozone")


def test_stations_have_ids_and_coordinates_on_a_city_sized_area():
    source = SimulatedSource()
    stations = source.stations()
    assert list(stations.columns) == ["station", "latitude", "longitude"]
    assert stations["station"].tolist() == [f"S{i:04d}" for i in range(1, 13)]
    x, y = _positions_km(source)
    assert 25 < np.ptp(x) <= 62 and 25 < np.ptp(y) <= 62
    assert source.first_day() == date(2024, 1, 1)


def test_values_stay_within_physical_ranges(year):
    for column in DEFAULT_COLUMNS:
        values = year[column].dropna()
        bounds = PHYSICAL_RANGES[column]
        assert values.between(bounds.low, bounds.high).all(), column
    assert (year["pm10"] > year["pm25"]).mean() > 0.75
    assert (year["rain"] == 0).mean() > 0.9


def test_read_outside_the_range_raises_naming_it():
    source = SimulatedSource(start=date(2024, 3, 1), end=date(2024, 3, 31))
    for day in (date(2024, 2, 29), date(2024, 4, 1)):
        with pytest.raises(SourceError, match=r"2024-03-01\.\.2024-03-31"):
            source.read_day(day)
    assert len(source.read_day(date(2024, 3, 31))) == 288


def test_last_day_is_end_or_yesterday_in_utc():
    assert SimulatedSource(end=date(2024, 6, 30)).last_day() == date(2024, 6, 30)
    yesterday = datetime.now(timezone.utc).date() - timedelta(days=1)
    assert SimulatedSource(start=date(2024, 1, 1)).last_day() == yesterday
    assert SimulatedSource(start=yesterday + timedelta(days=2)).last_day() is None


# ----------------------------------------------------------------------------- determinism


def test_a_day_is_identical_across_instances_and_call_order():
    days = [date(2024, 5, 3), date(2024, 5, 4), date(2024, 9, 17)]
    first = SimulatedSource(seed=7)
    second = SimulatedSource(seed=7)
    forward = {d: first.read_day(d) for d in days}
    backward = {d: second.read_day(d) for d in reversed(days)}
    for d in days:
        pd.testing.assert_frame_equal(forward[d], backward[d], check_exact=True)
    pd.testing.assert_frame_equal(first.read_day(days[0]), forward[days[0]], check_exact=True)
    other_seed = SimulatedSource(seed=8).read_day(days[0])
    assert not np.allclose(other_seed["pm25"].fillna(0), forward[days[0]]["pm25"].fillna(0))


def test_a_day_is_identical_in_another_process():
    script = (
        "import hashlib, pandas as pd\n"
        "from datetime import date\n"
        "from aqi_assets.core.data.sources.simulated import SimulatedSource\n"
        "f = SimulatedSource(seed=3, n_stations=40).read_day(date(2024, 7, 3))\n"
        "print(hashlib.sha256(pd.util.hash_pandas_object(f).values.tobytes()).hexdigest())\n"
    )
    env = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    here = SimulatedSource(seed=3, n_stations=40).read_day(date(2024, 7, 3))
    assert child.stdout.strip() == hashlib.sha256(pd.util.hash_pandas_object(here).values.tobytes()).hexdigest()


def test_days_join_smoothly_at_midnight(year):
    # The step from 23:00 to 00:00 is no larger than the steps either side of it.
    for column in ("pm25", "no2", "o3", "temperature", "dew_point", "pressure", "wind_speed"):
        steps = _wide(year, column).diff().abs()
        hour = steps.index.hour
        midnight = steps[hour == 0].stack().mean()
        around = (steps[hour == 23].stack().mean() + steps[hour == 1].stack().mean()) / 2
        assert midnight <= 1.25 * around, (column, midnight, around)


# ------------------------------------------------------------------------------- realism


def test_heating_season_and_summer_have_their_signatures(year):
    month = year["timestamp"].dt.month
    winter, summer = year[month.isin([12, 1, 2])], year[month.isin([6, 7, 8])]
    assert winter["pm25"].mean() > 1.6 * summer["pm25"].mean()
    assert winter["pm25"].mean() > 70 and summer["pm25"].mean() > 25
    assert winter["so2"].mean() > 2.5 * summer["so2"].mean()
    assert winter["co"].mean() > 1.3 * summer["co"].mean()
    assert summer["o3"].mean() > 2.0 * winter["o3"].mean()
    assert summer["temperature"].mean() - winter["temperature"].mean() > 20
    assert (summer["rain"] > 0).mean() > 5 * (winter["rain"] > 0).mean()
    assert year["pm25"].max() > 300  # heavy episodes happen
    assert year.groupby(year["timestamp"].dt.floor("D"))["pm25"].mean().quantile(0.05) < 25  # so do clean days


def test_diurnal_cycles_peak_at_the_right_hours(year):
    by_hour = year.groupby(year["timestamp"].dt.hour)[["o3", "temperature", "no2", "wind_speed"]].mean()
    assert 13 <= by_hour["o3"].idxmax() <= 17 and by_hour["o3"].max() > 2.5 * by_hour["o3"].min()
    assert 13 <= by_hour["temperature"].idxmax() <= 16 and by_hour["temperature"].idxmin() <= 6
    assert by_hour["no2"].loc[[20, 21, 22, 23]].mean() > 1.2 * by_hour["no2"].loc[[12, 13, 14, 15]].mean()
    assert by_hour["wind_speed"].loc[12:16].mean() > 1.5 * by_hour["wind_speed"].loc[0:4].mean()


def test_dew_point_never_exceeds_temperature(year):
    both = year[["temperature", "dew_point"]].dropna()
    assert len(both) > 0.99 * len(year)
    assert (both["dew_point"] <= both["temperature"]).all()
    assert 3 < (both["temperature"] - both["dew_point"]).mean() < 20


def test_pressure_falls_when_temperature_rises_from_day_to_day(year):
    daily = year.groupby(year["timestamp"].dt.floor("D"))[["temperature", "pressure"]].mean()
    anomalies = daily - daily.rolling(31, center=True, min_periods=10).mean()
    assert anomalies.corr().loc["temperature", "pressure"] < -0.4


def test_pollution_builds_in_stagnant_southerly_air_and_clears_in_northerly_wind(year):
    wind = _city_wind(year)
    pm = _wide(year, "pm25").mean(axis=1)
    change_6h = pm.shift(-6) - pm
    northerly = wind["v"] < -2.0
    stagnant_southerly = (wind["speed"] < 1.0) & (wind["v"] > 0)
    assert northerly.sum() > 200 and stagnant_southerly.sum() > 200
    assert pm[stagnant_southerly].mean() > 2.0 * pm[northerly].mean()
    assert change_6h[northerly].mean() < -3.0 < 3.0 < change_6h[stagnant_southerly].mean()


def test_nearby_stations_agree_more_than_distant_ones(year):
    source = SimulatedSource()
    x, y = _positions_km(source)
    distance = np.hypot(x[:, None] - x, y[:, None] - y)
    corr = _wide(year, "pm25").corr().to_numpy()
    upper = np.triu_indices(len(x), 1)
    pairs_d, pairs_c = distance[upper], corr[upper]
    near, far = pairs_c[np.argmin(pairs_d)], pairs_c[np.argmax(pairs_d)]
    assert near > far + 0.1, (near, far)
    assert near > 0.85 and far > 0.5
    assert np.corrcoef(pairs_d, pairs_c)[0, 1] < -0.7


def _lead_lag(a: np.ndarray, b: np.ndarray, hours: np.ndarray, max_lag: int = 6) -> int:
    """The lag L (hours) maximising corr(a[t − L], b[t]) over the selected ``hours`` t."""
    scores = []
    for lag in range(-max_lag, max_lag + 1):
        pa, pb = a[hours - lag], b[hours]
        ok = ~np.isnan(pa) & ~np.isnan(pb)
        scores.append(np.corrcoef(pa[ok], pb[ok])[0, 1])
    return int(np.argmax(scores)) - max_lag


def test_downwind_station_sees_upwind_changes_hours_later(year):
    source = SimulatedSource()
    x, y = _positions_km(source)
    # The pair that lies most nearly north-south, far apart.
    score = (y[:, None] - y) - 2 * np.abs(x[:, None] - x)
    north, south = np.unravel_index(np.argmax(score), score.shape)
    assert y[north] - y[south] > 25
    log_pm = np.log(_wide(year, "pm25"))
    change = (log_pm - log_pm.shift(6)).to_numpy()  # 6-hour changes: fronts and build-ups
    wind = _city_wind(year)
    hours = np.arange(20, len(change) - 20)
    from_north = hours[(wind["v"].to_numpy() < -1.0)[hours]]
    from_south = hours[(wind["v"].to_numpy() > 1.0)[hours]]
    a, b = change[:, north], change[:, south]
    assert _lead_lag(a, b, from_north) >= 1  # the north station leads in northerly wind
    assert _lead_lag(a, b, from_south) <= -1  # and trails in southerly wind


def test_next_hour_pm25_is_forecastable_like_real_data(year):
    pm = _wide(year, "pm25")
    wind = _city_wind(year)
    x = np.log1p(pm.to_numpy())
    city = np.nanmean(x, axis=1, keepdims=True)
    target, now, before = x[3:], x[2:-1], x[:-3]
    v, speed = (wind[c].to_numpy()[2:-1, None] for c in ("v", "speed"))
    lags = [now, now - before]
    neighbours_and_wind = [city[2:-1] - now, city[2:-1] - city[1:-2], v, speed]
    y = target.ravel()

    def holdout_rmse(features):
        """(model RMSE, persistence RMSE, persistence within ±20 %) on the second half of the year."""
        table = np.stack([np.broadcast_to(f, now.shape).ravel() for f in features] + [np.ones(now.size)], axis=1)
        rows = np.flatnonzero(np.isfinite(table).all(axis=1) & np.isfinite(y))
        train, test = rows[: len(rows) // 2], rows[len(rows) // 2:]
        beta = np.linalg.lstsq(table[train], y[train], rcond=None)[0]
        actual, persistence = np.expm1(y[test]), np.expm1(now.ravel()[test])
        return (float(np.sqrt(np.mean((np.expm1(table[test] @ beta) - actual) ** 2))),
                float(np.sqrt(np.mean((persistence - actual) ** 2))),
                float(np.mean(np.abs(persistence - actual) <= 0.2 * actual)))

    lag_only, _, _ = holdout_rmse(lags)
    full, persistence, within_20 = holdout_rmse(lags + neighbours_and_wind)
    assert 0.6 < within_20 < 0.75  # real Beijing data: 67.5 %
    assert 12 < persistence < 30  # real: 19.4 µg/m³
    assert full < 0.98 * persistence and full < 0.99 * lag_only


def test_missing_cells_stay_in_band_and_rows_are_never_dropped(year):
    assert len(year) == 366 * 24 * 12
    share = year[list(DEFAULT_COLUMNS)].isna().to_numpy().mean()
    assert 0.01 <= share <= 0.03
    missing = _wide(year, "pm25").isna().to_numpy()
    longest = 0
    for column in missing.T:
        edges = np.diff(np.concatenate(([0], column.astype(int), [0])))
        runs = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
        longest = max(longest, runs.max(initial=0))
    assert longest >= 6  # instrument outages last hours


# ------------------------------------------------------------------------------ scenarios


def _daily_means(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    return frame.groupby([frame["timestamp"].dt.date, "station"])[column].mean().unstack()


def test_days_before_any_scenario_are_bit_identical():
    start = date(2024, 3, 10)
    scenarios = [DriftScenario(name, start) for name in SCENARIOS]
    changed = SimulatedSource(scenarios=scenarios, end=date(2024, 3, 31))
    plain = SimulatedSource(end=date(2024, 3, 31))
    for day in (date(2024, 3, 8), date(2024, 3, 9)):
        pd.testing.assert_frame_equal(changed.read_day(day), plain.read_day(day), check_exact=True)
    assert not changed.read_day(start)["pm25"].equals(plain.read_day(start)["pm25"])


def test_sensor_recalibration_steps_one_station_up_from_its_start():
    start = date(2024, 3, 10)
    scenario = DriftScenario("sensor_recalibration", start, station="S0003")
    changed = SimulatedSource(scenarios=[scenario], end=date(2024, 3, 31))
    plain = SimulatedSource(end=date(2024, 3, 31))
    first, last = start - timedelta(days=7), start + timedelta(days=6)
    new = _daily_means(changed.read_range(first, last), "pm25")
    old = _daily_means(plain.read_range(first, last), "pm25")
    versus_neighbours = new["S0003"] / new.drop(columns="S0003").mean(axis=1)
    assert versus_neighbours.loc[start:].mean() > 1.25 * versus_neighbours.loc[:start - timedelta(days=1)].mean()
    # Against the same city without the scenario the step is exact: ×1 before, ×1.5 + 8 after.
    step = versus_neighbours / (old["S0003"] / old.drop(columns="S0003").mean(axis=1))
    assert (step.loc[:start - timedelta(days=1)] == 1.0).all()
    assert (step.loc[start:] > 1.5).all()

    for day in (start, start + timedelta(days=2)):
        new_stats = compute_feature_stats(changed.read_day(day), day).set_index(["station", "feature"])["mean"]
        old_stats = compute_feature_stats(plain.read_day(day), day).set_index(["station", "feature"])["mean"]
        assert new_stats[("S0003", "pm25")] == pytest.approx(1.5 * old_stats[("S0003", "pm25")] + 8, rel=0.01)
        untouched = [key for key in new_stats.index if key[0] != "S0003" or key[1] not in POLLUTANTS]
        pd.testing.assert_series_equal(new_stats[untouched], old_stats[untouched])


def test_emissions_trend_grows_primary_pollutants_geometrically():
    start = date(2024, 3, 1)
    changed = SimulatedSource(scenarios=[DriftScenario("emissions_trend", start, magnitude=20)])
    plain = SimulatedSource()
    day = start + timedelta(days=30)
    new, old = changed.read_day(day), plain.read_day(day)
    for column in ("pm25", "pm10", "no2", "so2", "co"):
        assert new[column].sum() / old[column].sum() == pytest.approx(1.2, abs=0.015), column
    pd.testing.assert_series_equal(new["o3"], old["o3"])
    pd.testing.assert_series_equal(new["temperature"], old["temperature"])
    first = changed.read_day(start)["pm25"].sum() / plain.read_day(start)["pm25"].sum()
    assert 1.0 < first < 1.01


def test_weather_regime_widens_temperature_and_wind_variation():
    start = date(2024, 4, 1)
    changed = SimulatedSource(scenarios=[DriftScenario("weather_regime", start)])
    plain = SimulatedSource()
    new = changed.read_range(start, start + timedelta(days=13))
    old = plain.read_range(start, start + timedelta(days=13))
    assert new["temperature"].std() / old["temperature"].std() > 2.0
    assert new["wind_speed"].mean() / old["wind_speed"].mean() > 1.8
    assert new["pm25"].mean() < old["pm25"].mean()  # stronger wind ventilates the city
    stats_new = compute_feature_stats(new[new["timestamp"].dt.date == start], start)
    stats_old = compute_feature_stats(old[old["timestamp"].dt.date == start], start)
    temperature_std = [s.loc[s["feature"] == "temperature", "std"].mean() for s in (stats_new, stats_old)]
    assert temperature_std[0] > 2.0 * temperature_std[1]


def test_smoke_episode_arrives_and_decays_over_days():
    start = date(2024, 5, 1)
    changed = SimulatedSource(scenarios=[DriftScenario("smoke_episode", start)])
    plain = SimulatedSource()
    excess = {}
    for k in (0, 1, 2, 6):
        day = start + timedelta(days=k)
        new, old = changed.read_day(day), plain.read_day(day)
        excess[k] = new["pm25"].mean() - old["pm25"].mean()
        assert new["co"].mean() > old["co"].mean() and new["pm10"].mean() > old["pm10"].mean()
    assert excess[0] > 120 and excess[1] > 80
    assert excess[0] > excess[1] > excess[2] > excess[6]
    assert excess[6] < 0.2 * excess[0]


# ------------------------------------------------------------------------------- scaling


def test_thousand_stations_fill_a_wider_area():
    source = SimulatedSource(n_stations=1000, end=date(2024, 1, 31))
    frame = source.read_day(date(2024, 1, 20))
    assert len(frame) == 24_000 and frame["station"].nunique() == 1000
    assert frame["station"].iloc[-1] == "S1000"
    x, _ = _positions_km(source)
    assert np.ptp(x) > 1.5 * np.ptp(_positions_km(SimulatedSource())[0])


# -------------------------------------------------------------------------------- the spec


def test_empty_spec_gives_the_defaults():
    source = SimulatedSource.from_spec("")
    assert source.spec == "simulated:seed=42,stations=12,start=2024-01-01"
    assert (source.seed, source.n_stations, source.start, source.end, source.scenarios) == (
        42, 12, date(2024, 1, 1), None, ()
    )
    assert source_from_spec("simulated").spec == source.spec


def test_full_spec_is_parsed_and_round_trips():
    rest = ("seed=7,stations=1000,start=2024-01-01,end=2024-06-30,"
            "scenario=sensor_recalibration@2024-03-01+smoke_episode@2024-05-01")
    source = SimulatedSource.from_spec(rest)
    assert (source.seed, source.n_stations, source.end) == (7, 1000, date(2024, 6, 30))
    assert source.scenarios == (
        DriftScenario("sensor_recalibration", date(2024, 3, 1)),
        DriftScenario("smoke_episode", date(2024, 5, 1)),
    )
    assert source.spec == "simulated:" + rest
    assert source_from_spec(source.spec).spec == source.spec


def test_scenario_station_and_magnitude_are_optional_parts():
    source = SimulatedSource.from_spec(
        "scenario=sensor_recalibration@2024-02-01@S0005@1.8+sensor_recalibration@2024-02-02@S0002"
        "+sensor_recalibration@2024-02-03@2+emissions_trend@2024-03-01@25+weather_regime@2024-04-01"
    )
    parsed = [(s.name, s.station, s.magnitude, s.strength) for s in source.scenarios]
    assert parsed == [
        ("sensor_recalibration", "S0005", 1.8, 1.8),
        ("sensor_recalibration", "S0002", None, 1.5),
        ("sensor_recalibration", None, 2.0, 2.0),
        ("emissions_trend", None, 25.0, 25.0),
        ("weather_regime", None, None, DEFAULT_MAGNITUDES["weather_regime"]),
    ]
    assert SimulatedSource.from_spec(source.spec.partition(":")[2]).scenarios == source.scenarios


@pytest.mark.parametrize(
    ("rest", "fragments"),
    [
        ("seeds=3", ["'seeds'", "seed, stations, start, end, columns, scenario"]),
        ("seed", ["key=value"]),
        ("seed=abc", ["seed=", "integer"]),
        ("seed=-1", ["seed=", "integer >= 0"]),
        ("stations=0", ["stations=", "1..5000"]),
        ("stations=12.5", ["stations=", "integer"]),
        ("start=2024-13-01", ["start=", "YYYY-MM-DD"]),
        ("start=2024-05-01,end=2024-04-01", ["end 2024-04-01", "before start"]),
        ("seed=1,seed=2", ["'seed'", "twice"]),
        ("scenario=volcano@2024-03-01", ["'volcano'", "sensor_recalibration, emissions_trend"]),
        ("scenario=smoke_episode", ["name@YYYY-MM-DD"]),
        ("scenario=smoke_episode@2024-02-30", ["smoke_episode start", "YYYY-MM-DD"]),
        ("scenario=smoke_episode@2024-03-01@lots", ["magnitude 'lots'", "µg/m³"]),
        ("scenario=weather_regime@2024-03-01@-2", ["magnitude -2", "> 0"]),
        ("scenario=emissions_trend@2024-03-01@S0002@5", ["takes no station"]),
        ("scenario=sensor_recalibration@2024-03-01@S0099", ["'S0099'", "S0001..S0012"]),
        ("scenario=sensor_recalibration@2024-03-01@S0002@0", ["magnitude 0", "gain > 0"]),
        ("scenario=smoke_episode@2024-03-01+", ["''", "name@YYYY-MM-DD"]),
    ],
)
def test_bad_spec_names_the_key_and_what_was_expected(rest, fragments):
    with pytest.raises(SourceError) as error:
        SimulatedSource.from_spec(rest)
    for fragment in fragments:
        assert fragment in str(error.value)
