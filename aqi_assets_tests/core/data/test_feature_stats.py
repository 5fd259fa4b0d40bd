"""Feature sketches: exact moments and quantiles per station, pooling, fixed histogram edges."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from aqi_assets.core.data.feature_stats import (
    HIST_COLUMNS, PEER_MIN_OTHERS, compute_feature_stats, peer_residuals, pool_stats,
)
from aqi_assets.core.data.schema import HISTOGRAM_BINS, RESIDUAL_FLOOR_SHARE, STAT_FEATURES, histogram_edges
from aqi_assets_tests.factories import canonical_rows

DAY = date(2024, 3, 1)


def test_one_row_per_station_and_feature_with_exact_moments():
    frame = canonical_rows(start=DAY, days=1)
    frame.loc[frame.index[:5], "pm25"] = np.nan
    stats = compute_feature_stats(frame, DAY)
    measured = [f for f in STAT_FEATURES if f in frame.columns]
    assert len(measured) == 12 and "humidity" not in measured  # a Beijing-shaped network
    assert len(stats) == 3 * len(measured) and set(stats["feature"]) == set(measured)
    for station, group in frame.groupby("station"):
        row = stats[(stats["station"] == station) & (stats["feature"] == "pm25")].iloc[0]
        values = group["pm25"].dropna()
        assert row["count"] == len(values) and row["missing"] == 24 - len(values)
        assert np.isclose(row["mean"], values.mean())
        assert np.isclose(row["std"], values.std(ddof=0))
        assert np.isclose(row["p50"], values.median())
        assert np.isclose(row["p95"], np.quantile(values, 0.95))
        assert row[list(HIST_COLUMNS)].sum() == len(values)
        expected_hist, _ = np.histogram(values, bins=histogram_edges("pm25"))
        assert row[list(HIST_COLUMNS)].astype(int).tolist() == expected_hist.tolist()


def test_only_the_measured_features_of_a_small_network_are_sketched():
    frame = canonical_rows(start=DAY, days=1)[["timestamp", "station", "no2", "temperature", "wind_direction"]]
    stats = compute_feature_stats(frame, DAY)
    assert sorted(stats["feature"].unique()) == ["no2", "temperature", "wind_direction"]
    assert len(stats) == 3 * 3 and (stats["missing"] == 0).all()


def test_wind_direction_histogram_uses_compass_sectors():
    frame = canonical_rows(start=DAY, days=1)
    frame["wind_direction"] = "E"  # 90°
    frame.loc[0, "wind_direction"] = "N"  # 0° -> first bin
    stats = compute_feature_stats(frame, DAY)
    wind = stats[stats["feature"] == "wind_direction"]
    station0 = frame.loc[0, "station"]
    row = wind[wind["station"] == station0].iloc[0]
    assert row["h00"] == 1
    east_bin = int(np.searchsorted(histogram_edges("wind_direction")[1:-1], 90.0, side="right"))
    assert row[f"h{east_bin:02d}"] == 23


def test_all_missing_station_has_nan_moments_and_full_missing_share():
    frame = canonical_rows(start=DAY, days=1)
    frame.loc[frame["station"] == "Alpha", "temperature"] = np.nan
    stats = compute_feature_stats(frame, DAY)
    row = stats[(stats["station"] == "Alpha") & (stats["feature"] == "temperature")].iloc[0]
    assert row["count"] == 0 and row["missing_share"] == 1.0
    assert np.isnan(row["mean"]) and np.isnan(row["p50"])


def test_pooling_days_is_exact():
    frame = canonical_rows(start=DAY, days=3)
    stats = pd.concat([
        compute_feature_stats(part, d) for d, part in frame.groupby(frame["timestamp"].dt.date)
    ])
    pooled = pool_stats(stats)
    row = pooled[(pooled["station"] == "Bravo") & (pooled["feature"] == "no2")].iloc[0]
    values = frame.loc[frame["station"] == "Bravo", "no2"]
    assert row["days"] == 3 and row["count"] == 72
    assert np.isclose(row["mean"], values.mean()) and np.isclose(row["std"], values.std(ddof=0))
    assert row[list(HIST_COLUMNS)].sum() == 72
    assert len(HIST_COLUMNS) == HISTOGRAM_BINS


def test_peer_residuals_are_each_value_minus_the_median_of_the_others_at_its_hour():
    rng = np.random.default_rng(3)
    hours = rng.integers(0, 60, 400)
    values = np.where(rng.random(400) < 0.1, np.nan, rng.normal(50, 20, 400).round())  # ties, gaps
    got = peer_residuals(hours, values)
    for i in range(len(values)):
        others = values[(hours == hours[i]) & (np.arange(len(values)) != i) & ~np.isnan(values)]
        enough = len(others) >= PEER_MIN_OTHERS and not np.isnan(values[i])
        want = values[i] - np.median(others) if enough else np.nan
        np.testing.assert_allclose(got[i], want, equal_nan=True)


def test_residual_sketches_against_the_other_stations_at_the_same_hour():
    stamps = pd.date_range("2025-01-01", periods=24, freq="h")
    level = np.linspace(20, 120, 24)
    gains = {"A": 1.0, "B": 1.1, "C": 1.3, "D": 0.9, "E": 1.6}
    frame = pd.concat([pd.DataFrame({"timestamp": stamps, "station": name, "pm10": level * gain, "wind_direction": 90.0})
                       for name, gain in gains.items()], ignore_index=True)
    stats = compute_feature_stats(frame, date(2025, 1, 1)).set_index(["station", "feature"])
    # pm10 on the fine log scale (+0.5: its floor of 20 × RESIDUAL_FLOOR_SHARE): C's residual
    # against the median of the four others (B and A)
    logged = {name: np.log(level * gain + 20 * RESIDUAL_FLOOR_SHARE) for name, gain in gains.items()}
    assert RESIDUAL_FLOOR_SHARE * 20 == 0.5
    residual = logged["C"] - (logged["A"] + logged["B"]) / 2
    row = stats.loc[("C", "pm10")]
    assert row["residual_count"] == 24
    np.testing.assert_allclose([row["residual_sum"], row["residual_sum_sq"]], [residual.sum(), (residual**2).sum()])
    assert stats.loc[("A", "wind_direction"), "residual_count"] == 0  # angles have no median to subtract
    pooled = pool_stats(stats.reset_index().assign(date=pd.Timestamp("2025-01-01")))
    assert pooled.set_index(["station", "feature"]).loc[("C", "pm10"), "residual_count"] == 24
    few = compute_feature_stats(frame[frame["station"].isin(list(gains)[:PEER_MIN_OTHERS])], date(2025, 1, 1))
    assert (few["residual_count"] == 0).all()  # too few others for a yardstick
