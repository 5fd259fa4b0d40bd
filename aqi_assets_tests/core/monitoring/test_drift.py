"""Drift from feature sketches: windows, statistics, false-alarm control and detection."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from aqi_assets.core.configuration.config import ConfigError, DriftSettings, RetrainingConfig, parse_config
from aqi_assets.core.monitoring.drift import (
    benjamini_hochberg,
    check_drift,
    current_window,
    evaluate_drift,
    kuiper_p_value,
    mean_variance_factor,
    reference_window,
)
from aqi_assets.core.data.feature_stats import HIST_COLUMNS, compute_feature_stats
from aqi_assets.core.data.schema import COMPASS_POINTS, HISTOGRAM_BINS, STAT_FEATURES, histogram_edges
from aqi_assets.core.data.sources.simulated import DriftScenario, SimulatedSource

SETTINGS = DriftSettings(rule="seed")  # the window rules; the sequential rule is tested below


def days_from(first: date, count: int) -> list[date]:
    return [first + timedelta(days=i) for i in range(count)]


def sketch_days(frames: list[pd.DataFrame], days: list[date]) -> pd.DataFrame:
    """``compute_feature_stats`` of many days in one call (station labels carry the day)."""
    tagged = []
    for frame, day in zip(frames, days):
        frame = frame.copy()
        frame["station"] = frame["station"].astype(str) + "|" + day.isoformat()
        tagged.append(frame)
    stats = compute_feature_stats(pd.concat(tagged, ignore_index=True), days[0])
    station_day = stats["station"].str.split("|", expand=True)
    return stats.assign(station=station_day[0], date=pd.to_datetime(station_day[1]))


# ------------------------------------------------------------------------------ pure pieces


def test_benjamini_hochberg_values():
    q = benjamini_hochberg(np.array([0.01, 0.04, 0.03, 0.005, np.nan]))
    np.testing.assert_allclose(q[:4], [0.02, 0.04, 0.04, 0.02])
    assert np.isnan(q[4])
    p = np.random.default_rng(1).uniform(size=500) ** 3
    np.testing.assert_allclose(benjamini_hochberg(p), sps.false_discovery_control(p))


def test_kuiper_p_value_matches_published_critical_values():
    # Stephens (1970): asymptotic upper points of √n·V are 1.620, 1.747, 2.001 at 10 %, 5 %, 1 %.
    np.testing.assert_allclose(kuiper_p_value(np.array([1.620, 1.747, 2.001])), [0.10, 0.05, 0.01], atol=2e-3)
    assert kuiper_p_value(np.array([0.1]))[0] == 1.0


def test_mean_variance_factor_of_correlated_days():
    np.testing.assert_allclose(mean_variance_factor(np.array([1, 2, 10]), np.zeros(3)), [1.0, 0.5, 0.1])
    assert mean_variance_factor(np.array([2]), np.array([0.5]))[0] == pytest.approx(0.75)  # (1 + ρ) / 2
    # 30 days at ρ = 0.6 carry the information of ~8 independent days.
    assert 1 / mean_variance_factor(np.array([30]), np.array([0.6]))[0] == pytest.approx(7.9, abs=0.1)


def test_windows_recent_seasonal_and_fallback():
    current = current_window(date(2025, 11, 26), SETTINGS)
    assert (current[0], current[-1], len(current)) == (date(2025, 11, 20), date(2025, 11, 26), 7)
    recent = reference_window(current, SETTINGS.model_copy(update={"reference": "recent"}))
    assert (recent.kind, recent.days[0], recent.days[-1], len(recent)) == (
        "recent", date(2025, 10, 21), date(2025, 11, 19), 30,
    )
    seasonal = reference_window(current, SETTINGS)
    assert (seasonal.kind, seasonal.years, len(seasonal)) == ("seasonal", (1, 2), 60)
    # Same weekdays, 52 and 104 weeks back, centred on the current window's middle (Nov 23).
    assert seasonal.days[0] == date(2023, 11, 11) and seasonal.days[-1] == date(2024, 12, 8)  # 2024 is a leap year
    assert {d.weekday() for d in seasonal.days[30:]} == set(range(7))
    assert date(2024, 11, 24) in seasonal.days and date(2025, 11, 23) - timedelta(days=364) == date(2024, 11, 24)
    # Only one earlier year on record: that year alone.
    one_year = reference_window(current, SETTINGS, days_from(date(2024, 6, 1), 540))
    assert (one_year.kind, one_year.years, len(one_year)) == ("seasonal", (1,), 30)
    # No earlier year: fall back to the recent window (restricted to days on record).
    fallback = reference_window(current, SETTINGS, days_from(date(2025, 10, 1), 50))
    assert fallback.kind == "recent" and fallback.days[0] == date(2025, 10, 21) and len(fallback) == 30
    # not_before: nothing earlier is used (here: a recent window cut to 20 days); a window cut
    # below half its length (10 days) is not used at all.
    cut = reference_window(current, SETTINGS, None, not_before=date(2025, 10, 31))
    assert cut.kind == "recent" and cut.days[0] == date(2025, 10, 31) and len(cut) == 20
    short = reference_window(current, SETTINGS, None, not_before=date(2025, 11, 10))
    assert short.kind == "insufficient" and len(short) == 0


def test_drift_settings_validation_names_the_field():
    with pytest.raises(ConfigError, match="onset_days"):
        parse_config({"drift": {"onset_days": 9}})
    with pytest.raises(ConfigError, match="drift.reference"):
        parse_config({"drift": {"reference": "last_year"}})
    with pytest.raises(ConfigError, match="cusum_retrain_h must be ≥ cusum_large_h"):
        parse_config({"drift": {"cusum_retrain_h": 6.0}})
    assert parse_config({"drift": {"cusum_retrain_h": 8.0}}).drift.cusum_retrain_h == 8.0


# ------------------------------------------------------------------ synthetic sketches


def synthetic_sketches(
    n_stations: int, days: list[date], seed: int, shift: dict[str, tuple[float, float]] | None = None,
    spread: dict[str, float] | None = None, shifted_stations: int = 0, shift_from: int = 10**9,
) -> pd.DataFrame:
    """Daily sketches of a stationary city: shared weather days, station days, hourly AR(1) noise.

    ``shift`` maps a feature to (gain, offset) and ``spread`` to a factor on the hourly noise,
    applied to the first ``shifted_stations`` stations from day index ``shift_from`` on. Wind
    direction varies mostly hour by hour (little day-to-day dependence).
    """
    rng = np.random.default_rng(seed)
    n_days = len(days)

    def ar1(shape, rho, axis_len):
        out = np.empty(shape)
        out[..., 0] = rng.standard_normal(shape[:-1])
        for i in range(1, axis_len):
            out[..., i] = rho * out[..., i - 1] + np.sqrt(1 - rho**2) * rng.standard_normal(shape[:-1])
        return out

    blocks = []
    level = {"pm25": 60, "pm10": 90, "so2": 12, "no2": 40, "co": 900, "o3": 55, "rain": 0.2, "wind_speed": 2.0}
    for feature in (f for f in STAT_FEATURES if f != "humidity"):  # a Beijing-shaped network
        region = ar1((n_days,), 0.6, n_days)[None, :, None]
        station_level = 0.3 * rng.standard_normal(n_stations)[:, None, None]
        station_day = ar1((n_stations, n_days), 0.3, n_days)[:, :, None]
        hours = ar1((n_stations, n_days, 24), 0.8, 24)
        if spread and feature in spread:
            hours[:shifted_stations, shift_from:] *= spread[feature]
        z = 0.6 * region + station_level + 0.15 * station_day + 0.4 * hours
        if feature == "wind_direction":
            z = 0.2 * region + 0.1 * station_level + 0.8 * rng.standard_normal((n_stations, n_days, 24))
            values = np.round(((z * 90.0 + 180.0) % 360.0) / 22.5) % 16 * 22.5
        elif feature in level:
            values = level[feature] * np.exp(0.6 * z)
        elif feature == "pressure":
            values = 1012.0 + 6.0 * z
        else:  # temperature, dew point
            values = 5.0 + 5.0 * z
        if shift and feature in shift:
            gain, offset = shift[feature]
            values[:shifted_stations, shift_from:] = gain * values[:shifted_stations, shift_from:] + offset
        bins = np.searchsorted(histogram_edges(feature)[1:-1], values, side="right")
        cell = np.arange(n_stations * n_days).reshape(n_stations, n_days)[:, :, None]
        hist = np.bincount((cell * HISTOGRAM_BINS + bins).ravel(), minlength=n_stations * n_days * HISTOGRAM_BINS)
        frame = pd.DataFrame({
            "date": np.tile(pd.to_datetime(days), n_stations),
            "station": np.repeat([f"S{i:04d}" for i in range(n_stations)], n_days),
            "feature": feature,
            "count": 24,
            "sum": values.sum(axis=2).ravel(),
            "sum_sq": (values**2).sum(axis=2).ravel(),
        })  # fmt: skip
        frame[list(HIST_COLUMNS)] = hist.reshape(n_stations * n_days, HISTOGRAM_BINS)
        blocks.append(frame)
    return pd.concat(blocks, ignore_index=True)


SYNTH_DAYS = days_from(date(2024, 3, 1), 37)
SYNTH_REF, SYNTH_CUR = SYNTH_DAYS[:30], SYNTH_DAYS[30:]


def test_no_false_alarms_across_1000_stations_by_12_features():
    stats = synthetic_sketches(1000, SYNTH_DAYS, seed=7)
    report = evaluate_drift(stats, SYNTH_CUR, SYNTH_REF, SETTINGS)
    table = report.table
    assert len(table) == 12_000
    p = table[["p_mean", "p_peer", "p_std", "p_ks"]].to_numpy().ravel()
    p = p[~np.isnan(p)]
    assert len(p) == 1000 * (3 * 10 + 12)  # mean, peer and spread tests skip wind direction and rain
    # The tests are live: without multiple-testing control, dozens of pairs would be flagged ...
    assert 20 <= np.sum(p < 0.01) <= 0.02 * len(p)
    # ... with Benjamini–Hochberg over all 42,000 tests, none is.
    assert report.flagged.empty and report.triggers() == []
    assert report.summary().startswith("No drift in 12000 station-features")


def test_shift_at_a_few_stations_is_found_among_1000():
    stats = synthetic_sketches(
        1000, SYNTH_DAYS, seed=7, shift={"pm25": (2.0, 10.0)}, shifted_stations=3, shift_from=30,
    )
    report = evaluate_drift(stats, SYNTH_CUR, SYNTH_REF, SETTINGS)
    flagged = report.flagged
    found = set(zip(flagged["station"], flagged["feature"]))
    # No false discovery among 12,000 pairs; at least two of the three shifted stations found
    # (S0000's offset from its peers happens to be noisier in the reference month).
    assert found <= {("S0000", "pm25"), ("S0001", "pm25"), ("S0002", "pm25")} and len(found) >= 2
    assert (flagged["severity"] == "critical").all()
    # Seen against peers: ×2 + 10 on a level near 46 (+ log floor 10) is (2·46 + 20) / 56 − 1 = +100 %.
    assert flagged["peer_shift"].between(0.7, 1.3).all()
    assert (flagged["q_peer"] <= SETTINGS.false_discovery_rate).all()
    (trigger,) = report.triggers(at=datetime(2024, 4, 6, 3, 0))
    assert (trigger.model, trigger.trigger_type, trigger.severity) == ("*", "drift", "critical")
    assert trigger.key == "drift/*/2024-03-31..2024-04-06"
    assert trigger.evidence["pairs_flagged"] == len(found) and trigger.evidence["pairs_tested"] == 12_000
    assert trigger.evidence["rule_counts"]["mean_shift"] == len(found)
    assert {w["station"] for w in trigger.evidence["worst"]} == {s for s, _ in found}
    assert "pm25 at S000" in trigger.reason and len(trigger.tags()["aqi/reason"]) <= 200
    # Cooldown: a trigger 3 days ago suppresses this one (default 7 days), 7 days ago does not.
    assert report.triggers(last_triggered_on=date(2024, 4, 3)) == []
    assert len(report.triggers(last_triggered_on=date(2024, 3, 30))) == 1


def test_mean_shift_floor_guards_features_centred_near_zero():
    # Winter temperature: reference mean ≈ 0.5 °C; a +1 °C week is +200 % of the mean but
    # +10 % of the 10 °C floor, so the mean-shift rule does not fire.
    stats = synthetic_sketches(20, SYNTH_DAYS, seed=3)
    temperature = stats["feature"] == "temperature"
    stats.loc[temperature, ["sum", "sum_sq"]] = 0.0
    hourly = np.full(24, 0.5)
    current = temperature & stats["date"].isin(pd.to_datetime(SYNTH_CUR))
    stats.loc[temperature, "sum"] = hourly.sum()
    stats.loc[temperature, "sum_sq"] = (hourly**2).sum()
    stats.loc[current, "sum"] = (hourly + 1.0).sum()
    stats.loc[current, "sum_sq"] = ((hourly + 1.0) ** 2).sum()
    row = evaluate_drift(stats, SYNTH_CUR, SYNTH_REF, SETTINGS).table.query("feature == 'temperature'").iloc[0]
    assert row["ref_mean"] == pytest.approx(0.5) and row["cur_mean"] == pytest.approx(1.5)
    assert row["mean_shift"] == pytest.approx(0.1)
    assert not row["mean_shift_drift"]


def test_std_ratio_compares_within_day_spread():
    no_onset = SETTINGS.model_copy(update={"onset_days": 7})  # whole-window numbers only
    plain = synthetic_sketches(20, SYNTH_DAYS, seed=5)
    # Doubling every hour's deviation from its day's mean doubles the within-day std exactly.
    doubled = plain.copy()
    rows = (doubled["feature"] == "no2") & (doubled["station"] == "S0004") & doubled["date"].isin(pd.to_datetime(SYNTH_CUR))
    n, total = doubled.loc[rows, "count"], doubled.loc[rows, "sum"]
    doubled.loc[rows, "sum_sq"] = total**2 / n + 4.0 * (doubled.loc[rows, "sum_sq"] - total**2 / n)
    query = "feature == 'no2' and station == 'S0004'"
    before = evaluate_drift(plain, SYNTH_CUR, SYNTH_REF, no_onset).table.query(query).iloc[0]
    after = evaluate_drift(doubled, SYNTH_CUR, SYNTH_REF, no_onset).table.query(query).iloc[0]
    assert after["std_ratio"] == pytest.approx(2.0 * before["std_ratio"])
    assert after["cur_mean"] == pytest.approx(before["cur_mean"])


def test_tripled_hourly_spread_is_a_std_ratio_drift():
    # Temperature (additive) at S0003: hourly noise ×3 in the current week, daily means unchanged.
    stats = synthetic_sketches(40, SYNTH_DAYS, seed=5, spread={"temperature": 3.0}, shifted_stations=4, shift_from=30)
    report = evaluate_drift(stats, SYNTH_CUR, SYNTH_REF, SETTINGS)
    flagged = report.flagged
    assert set(flagged["station"]) <= {"S0000", "S0001", "S0002", "S0003"} and len(flagged) >= 3
    assert (flagged["feature"] == "temperature").all() and flagged["std_ratio_drift"].all()
    assert flagged["std_ratio"].between(2.0, 3.5).all()
    assert not flagged["mean_shift_drift"].any()


def test_wind_direction_gets_histogram_tests_only():
    stats = synthetic_sketches(40, SYNTH_DAYS, seed=11)
    # Rotate S0002's wind by 90° (four compass sectors) in the current week.
    rows = (stats["feature"] == "wind_direction") & (stats["station"] == "S0002") & stats["date"].isin(
        pd.to_datetime(SYNTH_CUR)
    )
    sectors = stats.loc[rows, list(HIST_COLUMNS[:16])].to_numpy()
    stats.loc[rows, list(HIST_COLUMNS[:16])] = np.roll(sectors, 4, axis=1)
    report = evaluate_drift(stats, SYNTH_CUR, SYNTH_REF, SETTINGS)
    wind = report.table.query("feature == 'wind_direction'")
    assert wind[["mean_shift", "std_ratio", "p_mean", "p_peer", "p_std", "ref_mean"]].isna().all().all()
    flagged = report.flagged
    assert list(zip(flagged["station"], flagged["feature"])) == [("S0002", "wind_direction")]
    assert flagged.iloc[0]["severity"] == "high"  # Kuiper significant and PSI > 0.25
    assert "Kuiper" in report.summary()


def test_bad_windows_and_duplicate_sketches_are_refused():
    stats = synthetic_sketches(6, SYNTH_DAYS, seed=2)
    with pytest.raises(ValueError, match="overlap on 1 day"):
        evaluate_drift(stats, SYNTH_CUR, SYNTH_REF + SYNTH_CUR[:1], SETTINGS)
    with pytest.raises(ValueError, match="current_days is empty"):
        evaluate_drift(stats, [], SYNTH_REF, SETTINGS)
    doubled = pd.concat([stats, stats.iloc[:1]])
    with pytest.raises(ValueError, match=r"more than one row for date 2024-03-01.*'S0000'.*'pm25'"):
        evaluate_drift(doubled, SYNTH_CUR, SYNTH_REF, SETTINGS)


# ------------------------------------------------------------------------- simulated city

STEP_DAY = date(2025, 11, 17)  # heating season is starting: levels are moving anyway
SEASON_LAST = date(2025, 11, 26)
SIM_DAYS = (
    days_from(date(2023, 10, 25), 52) + days_from(date(2024, 10, 25), 52)
    + days_from(date(2025, 9, 1), 30) + days_from(date(2025, 11, 5), 22)
)  # fmt: skip


@pytest.fixture(scope="module")
def simulated_stats() -> pd.DataFrame:
    source = SimulatedSource(seed=42, n_stations=12, start=date(2023, 1, 1), end=date(2025, 12, 31))
    return sketch_days([source.read_day(d) for d in SIM_DAYS], SIM_DAYS)


@pytest.fixture(scope="module")
def recalibrated_stats(simulated_stats) -> pd.DataFrame:
    scenario = DriftScenario("sensor_recalibration", STEP_DAY, "S0001")  # pollutants ×1.5 + 8
    source = SimulatedSource(seed=42, n_stations=12, start=date(2023, 1, 1), end=date(2025, 12, 31), scenarios=[scenario])
    shifted_days = days_from(STEP_DAY, 2)
    shifted = sketch_days([source.read_day(d) for d in shifted_days], shifted_days)
    before = simulated_stats[simulated_stats["date"] < pd.Timestamp(STEP_DAY)]
    return pd.concat([before, shifted], ignore_index=True)


def test_step_shift_at_one_station_is_detected_within_two_days(recalibrated_stats):
    quiet = check_drift(recalibrated_stats, STEP_DAY - timedelta(days=1), SETTINGS)
    assert quiet.reference_kind == "seasonal" and quiet.triggers() == []
    report = check_drift(recalibrated_stats, STEP_DAY + timedelta(days=1), SETTINGS)
    (trigger,) = report.triggers()
    assert trigger.severity == "critical"
    assert set(report.flagged["station"]) == {"S0001"}
    top = report.flagged.iloc[0]
    assert top["window"] == "onset" and top["days"] == 2
    assert top["peer_shift"] > 0.25 and top["q_peer"] <= SETTINGS.false_discovery_rate
    assert "at S0001, last 2 days" in trigger.reason


def test_change_of_season_does_not_trigger_with_the_seasonal_reference(simulated_stats):
    current = current_window(SEASON_LAST, SETTINGS)
    # The season did change: against September the same week is flagged as drift.
    september = evaluate_drift(simulated_stats, current, days_from(date(2025, 9, 1), 30), SETTINGS)
    assert september.severity == "critical" and len(september.flagged) >= 10
    assert {"o3", "so2"} <= set(september.flagged["feature"])
    # Against the same weeks of 2024 and 2023 it is not.
    report = check_drift(simulated_stats, SEASON_LAST, SETTINGS)
    assert (report.reference_kind, len(report.reference_days)) == ("seasonal", 60)
    assert report.flagged.empty and report.triggers() == []


# ----------------------------------------------------------------------- real Beijing data


@pytest.fixture(scope="module")
def beijing_stats(beijing_dir) -> pd.DataFrame:
    from aqi_assets.core.data.sources.prsa import prsa_source

    source = prsa_source(str(beijing_dir))
    days = sorted(
        set(days_from(date(2014, 4, 1), 60) + days_from(date(2015, 4, 1), 60) + days_from(date(2016, 4, 1), 50)
            + days_from(date(2014, 11, 1), 40) + days_from(date(2015, 11, 1), 40) + days_from(date(2016, 9, 1), 90))
    )  # fmt: skip
    frame = source.read_range(date(2014, 4, 1), date(2016, 11, 30))
    by_day = dict(tuple(frame.groupby(frame["timestamp"].dt.date)))
    present = [d for d in days if d in by_day]
    return sketch_days([by_day[d] for d in present], present)


@pytest.mark.integration
def test_beijing_autumn_to_winter_is_not_drift_against_the_same_weeks(beijing_stats):
    current = current_window(date(2016, 11, 26), SETTINGS)
    september = evaluate_drift(beijing_stats, current, days_from(date(2016, 9, 1), 30), SETTINGS)
    assert len(september.flagged) >= 10 and "so2" in set(september.flagged["feature"])  # heating season
    report = check_drift(beijing_stats, date(2016, 11, 26), SETTINGS)
    assert report.reference_kind == "seasonal" and report.triggers() == []


@pytest.mark.integration
def test_beijing_gucheng_wind_change_is_found(beijing_stats):
    # Gucheng's recorded wind speed jumps from ~1.1 m/s (2014–2015) to ~1.9 m/s in 2016, at no
    # other station: a site or instrument change. Against the same weeks of earlier years:
    report = check_drift(beijing_stats, date(2016, 5, 12), SETTINGS)
    wind = report.flagged.query("feature == 'wind_speed'")
    assert list(wind["station"]) == ["Gucheng"]
    assert wind.iloc[0]["severity"] == "critical" and wind.iloc[0]["mean_shift"] > 0.5


def test_sequential_rule_finds_the_recalibrated_station_on_the_simulated_city():
    settings = RetrainingConfig(drift=DriftSettings(rule="sequential")).drift_in_force()  # as shipped
    scenario = DriftScenario("sensor_recalibration", STEP_DAY, "S0001")  # pollutants ×1.5 + 8
    source = SimulatedSource(seed=42, n_stations=12, start=date(2025, 9, 1), end=date(2025, 12, 31), scenarios=[scenario])
    days = days_from(STEP_DAY - timedelta(days=40), 43)
    stats = sketch_days([source.read_day(d) for d in days], days)
    # Too few reference days (13 before the current window) is no test at all, not a noisy one.
    assert check_drift(stats[stats["date"] >= pd.Timestamp(days[20])], STEP_DAY - timedelta(days=1), settings).flagged.empty
    quiet = check_drift(stats, STEP_DAY - timedelta(days=1), settings)
    # the small-shift chart finds a few weak offsets on clean days: alerts in the report, no run
    assert quiet.triggers() == [] and set(quiet.flagged["action"]) == {"alert"} and len(quiet.flagged) <= 5
    second = check_drift(stats, STEP_DAY + timedelta(days=1), settings)  # day two: alerts name the station
    assert list(second.flagged["station"])[:2] == ["S0001", "S0001"] and set(second.flagged["action"]) == {"alert"}
    # anything else flagged, the report a day earlier already showed (S0009's PM2.5 level, watched
    # more closely as the forecast target; S0012's PM2.5 scattered more around its peers' hours
    # through a smog week): ranked after the new finding
    others = second.flagged[second.flagged["station"] != "S0001"]
    assert (others["level_before"] | others["spread_before"]).all() and len(others) <= 2
    assert second.triggers() == []  # o3 and so2 moved most: alerts; PM2.5 (what the models predict) is noisier here
    every = settings.model_copy(update={"retrain_features": None})
    report = check_drift(stats, STEP_DAY + timedelta(days=2), every)  # day three: retrain on any feature
    assert set(report.retrain_rows["station"]) == {"S0001"} and report.triggers()
    assert report.flagged.iloc[0]["station"] == "S0001"
    assert report.references()["recent"]["pairs"] == len(report.table)  # the sequential rule's reference


def test_drift_retrains_on_the_forecast_target_unless_told_otherwise():
    from aqi_assets.core.configuration.config import DEFAULT_CONFIG

    assert DEFAULT_CONFIG.drift_in_force().retrain_features == ["pm25"]
    no2 = DEFAULT_CONFIG.with_overrides({"training.target": "no2"})
    assert no2.drift_in_force().retrain_features == ["no2"]  # follows the target, whatever it is
    assert no2.with_overrides({"drift.retrain_features": '["o3", "no2"]'}).drift_in_force().retrain_features == ["o3", "no2"]
    assert no2.with_overrides({"drift.retrain_features": '["all"]'}).drift_in_force().retrain_features is None


def test_the_peer_comparison_works_from_three_stations():
    from aqi_assets.core.monitoring.drift import _peer_offsets

    series = np.array([[0.0, 0.0], [0.2, 0.2], [1.0, np.nan]])  # 3 stations × 1 feature, 2 days
    offsets = _peer_offsets(series, (3, 1), min_peers=3)
    np.testing.assert_allclose(offsets[:, 0], [-0.2, 0.0, 0.8])
    assert np.isnan(offsets[:, 1]).all()  # two stations that day: no comparison
    assert RetrainingConfig().drift.min_peers == 3


def test_a_network_too_small_for_the_peer_comparison_says_so():
    days = days_from(date(2025, 3, 1), 40)
    source = SimulatedSource(seed=5, n_stations=2, start=days[0], end=days[-1])
    stats = sketch_days([source.read_day(d) for d in days], days)
    settings = RetrainingConfig().drift_in_force()
    report = check_drift(stats, days[-1], settings)
    assert report.table["level_cusum"].isna().all()
    assert "needs 3 stations with readings (drift.min_peers); this network has 2" in report.summary()
    three = SimulatedSource(seed=5, n_stations=3, start=days[0], end=days[-1])
    followed = check_drift(sketch_days([three.read_day(d) for d in days], days), days[-1], settings)
    assert followed.table["level_cusum"].notna().any() and "drift.min_peers" not in followed.summary()
