"""Input drift from ``feature_stats`` sketches: windows, per-(station, feature) tests, the report.

Two rules (``DriftSettings.rule``). **sequential** (default): for every station-feature, the
daily offset from the network median (log scale for pollutants and wind speed: level) and the
offset of the log variance of its hours' residuals against the other stations (spread: a sensor
grown noisier than its peers, on the fine log scale of ``schema.comparable``; the log within-day
variance where the sketches have no residuals), standardized by the pair's reference (median,
max(MAD, sd), widened for lag-1 correlation), feed two-sided CUSUMs, each day adding z − k capped at a clip:
a small-shift chart (``cusum_k`` 0.75, 0.5 on the ``retrain_features`` by
``retrain_features_cusum_k``; clip 2.5, a finding at ``cusum_h`` 4) that sees a +30 % step at
one station within days and shrugs off single odd days, and a large-shift chart
(k 1, clip 6, a finding at ``cusum_large_h`` 8) that sees a big step on its second day. On the
``retrain_features`` a third, small-shift chart follows the offset less β × that of the
station's control feature (``_control``: the other feature whose offset it follows best, at a
squared correlation of ``control_min_r2`` or more; PM10 for PM2.5 on Beijing): a local plume
moves both and cancels, a recalibrated analyser moves one; it makes a finding when the pair's
own offset carried the move. All need ``min_duration_days``. A finding alerts (it is in the
report and the sensor's tick); only
the large-shift level chart at ``cusum_retrain_h`` (14) on a ``retrain_features`` feature retrains.
A broken sensor alerts only and never retrains: a day whose readings are all one value (a flat
line), unless it is at the sensor's floor (between the lowest and the lower quartile of its
daily minima in the reference: a detection limit, a coarse resolution; a dead sensor reading 0
is below it), and a sensor with no reading for ``min_duration_days`` days after readings on most
reference days (silent). Its reference is the recent ``reference_days``: a station's offset
from its peers is steady across seasons but not across years. The report ranks what retrains,
then flat lines, then new findings before ongoing ones (those the report a day earlier showed),
then findings on ``retrain_features`` (what the models predict), then severity, then how fast
the evidence grew (the CUSUM per day of its run); silent sensors come last (no readings to
judge). **seed**: the window rules below, against the
seasonal reference. ``make bench-triggers`` measures both on Beijing (README, "Triggers on real
data"); the thresholds were chosen on 2013-04..2015-02 (``--period dev``) and scored on
2015-03..2017-02.

``check_drift`` is the one check the sensor and the backtest run. ``DriftState`` carries what
it needs between evaluations: the last requested trigger (cooldown) and, per station-feature a
requested trigger concerned, the day its reference restarts; every other pair keeps the
configured reference, and a restarted pair waits untested until it has half a reference.
Every row of the report says which reference it used and how many days it had.

``evaluate_drift`` pools the daily sketches of a current and a reference window for every
(station, feature) and computes, without touching raw rows:

- **mean shift** — (current mean − reference mean) / max(|reference mean|, floor), where
  ``floor`` is the per-feature physical scale in ``MEAN_SHIFT_FLOORS`` (10 °C for temperature,
  10 µg/m³ for PM2.5, ...), not the reference std. The original rule divides by the reference
  mean, which explodes for features centred near zero (winter temperature in °C); the floor
  keeps a 25 % shift at a physically meaningful size.
- **peer shift** — the change of the station's daily offset from the network median (the
  median over stations that day): weather and season move every station together, so the
  offset is far steadier than the level, and one station's sensor change stands out within
  days. Pollutants and wind speed use log(daily mean + floor), so this is a relative change.
- **std ratio** — current / reference *within-day* standard deviation (hourly spread around
  each day's mean), so a 7-day window is not compared unfairly with a 30-day window that also
  holds day-to-day swings.
- **KS** statistic on the pooled histograms (fixed bin edges; a binned KS is a lower bound of
  the exact one) — Kuiper's statistic for circular features (wind direction), which does not
  depend on where the circle is cut — and **PSI** on the same bins.

Hours are not independent evidence. Mean, peer and spread are tested with days as the units
(t tests on the daily mean, the daily offset and the log within-day variance), widened for the
lag-1 correlation of consecutive reference days; the t has at most 20 degrees of freedom
because daily offsets are heavier-tailed than normal (fronts reach stations hours apart).
KS and Kuiper use an effective sample size n / (1 + (m − 1)·ICC) / (days · variance factor of
the day series): the ICC of hours within a day from a one-way ANOVA of the daily sketches (on
bin indicators for circular features). Without this, KS at n ≈ 700 flags differences no model
would notice.

Each pair is tested on the whole current window and on its last ``onset_days`` days; the row
keeps the window with the stronger evidence and its p-values are doubled for that choice. All
p-values of a report (mean, peer, spread, KS over every station × feature) then get
Benjamini–Hochberg q-values, and a rule fires only where its test is significant at
``false_discovery_rate``:

| rule | fires when | severity |
|---|---|---|
| mean shift | size of the mean or the peer shift > ``mean_shift``, its test significant | critical |
| std ratio | ratio > ``std_ratio_high`` or < ``std_ratio_low``, spread test significant | medium |
| distribution | KS (Kuiper) significant; high if PSI > ``psi`` | medium / high |

Wind direction (circular) and rain (intermittent: a week's mean and spread mostly say whether
it rained) get the distribution rule only. ``reference_window`` picks the reference:
``seasonal`` (default) takes the same calendar weeks of up to ``seasonal_years`` earlier
years, so a change of season is not read as drift; ``recent`` takes the days just before.
On the simulated 12-station city (2025, checked every 5 days against 2023–2024) one window in
72 raised a drift trigger without injected drift, and a ×1.5 + 8 recalibration of one
station's pollutants was flagged on its second day in 23 of 24 starts across the year.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats as sps

from aqi_assets.core.configuration.config import DriftSettings
from aqi_assets.core.data.feature_stats import HIST_COLUMNS
from aqi_assets.core.data.schema import (
    CIRCULAR_FEATURES, DEFAULT_FLOOR, LOG_SCALE_FEATURES, MEAN_SHIFT_FLOORS, STATION, UNITS,
)
from aqi_assets.core.monitoring.triggers import ALL_MODELS, SEVERITIES, Trigger

#: Lowest share a PSI bin takes, so empty bins stay finite.
PSI_EPSILON = 1e-4
#: Days one seasonal year back: 52 weeks, so weekdays line up with the current window.
SEASONAL_SHIFT_DAYS = 364
#: Features that get the histogram tests only (circular, and intermittent rain).
HISTOGRAM_ONLY_FEATURES: frozenset[str] = frozenset({*CIRCULAR_FEATURES, "rain"})
#: Day-to-day correlation is capped here, so a short reference cannot claim near-total dependence.
MAX_DAY_CORRELATION = 0.95
#: Reference days with values that a shift test needs.
MIN_REFERENCE_DAYS = 3
#: Degrees of freedom of the day-level t tests are capped here (heavier tails than normal).
MAX_T_DF = 20.0
#: Reference days the sequential rule needs to know a station's normal offset and its spread.
SEQUENTIAL_MIN_REFERENCE_DAYS = 14
#: Hourly values a day needs before "all one value" counts as a flat line.
FLAT_MIN_VALUES = 12
#: A flat day at or below this quantile of the pair's daily minima in the reference is the
#: sensor's floor, not a fault (chosen on Beijing 2013-04..2015-02, README "Triggers on real data").
FLAT_FLOOR_QUANTILE = 0.25
#: A pair is silent when it has no reading for ``min_duration_days`` days after readings on at
#: least this share of its reference days (a sensor that rarely reports is not alerted daily).
SILENT_MIN_REFERENCE_SHARE = 0.8
#: A reference window needs at least this share of ``reference_days`` days (per seasonal year).
MIN_REFERENCE_SHARE = 0.5


@dataclass(frozen=True)
class ReferenceWindow:
    """Reference days and how they were chosen (``kind``: seasonal or recent; ``years`` back)."""

    days: tuple[date, ...]
    kind: str
    years: tuple[int, ...] = ()

    def __iter__(self):
        return iter(self.days)

    def __len__(self) -> int:
        return len(self.days)


def current_window(last_day: date, settings: DriftSettings) -> list[date]:
    """The ``current_days`` days ending ``last_day``."""
    return [last_day - timedelta(days=i) for i in range(settings.current_days - 1, -1, -1)]


def reference_window(
    current_days: Sequence[date],
    settings: DriftSettings,
    available_days: Iterable[date] | None = None,
    not_before: date | None = None,
) -> ReferenceWindow:
    """The reference days for ``current_days``.

    ``recent``: the ``reference_days`` days before the current window. ``seasonal``: for each
    of up to ``seasonal_years`` earlier years, ``reference_days`` days centred on the current
    window moved back 52 weeks per year; years count only if at least half their days are in
    ``available_days`` (all days count when it is ``None``). With no such year, the recent
    window is used (``kind == "recent"``). Days before ``not_before`` (e.g. the day after a
    drift trigger that concerned the pair) are never used; a window cut by ``not_before`` needs
    at least ``MIN_REFERENCE_SHARE`` of ``reference_days`` days, and with fewer the result is
    empty (``kind == "insufficient"``): the pair waits untested rather than being compared with
    a reference that shrank to a few days.
    """
    if not current_days:
        raise ValueError("current_days is empty")
    first, last = min(current_days), max(current_days)
    if available_days is None or isinstance(available_days, frozenset):
        available = available_days  # a frozenset is taken as dates already (check_drift builds it once)
    else:
        available = {_as_date(d) for d in available_days}

    def usable(days: list[date]) -> list[date]:
        days = [d for d in days if not_before is None or d >= not_before]
        return days if available is None else [d for d in days if d in available]

    enough = math.ceil(settings.reference_days * MIN_REFERENCE_SHARE)

    if settings.reference == "seasonal":
        middle = first + (last - first) / 2
        chosen: list[date] = []
        years: list[int] = []
        for year in range(1, settings.seasonal_years + 1):
            start = middle - timedelta(days=SEASONAL_SHIFT_DAYS * year + settings.reference_days // 2)
            days = usable([start + timedelta(days=i) for i in range(settings.reference_days)])
            if len(days) >= enough:
                chosen.extend(days)
                years.append(year)
        if chosen:
            return ReferenceWindow(tuple(sorted(chosen)), "seasonal", tuple(years))
    days = usable([first - timedelta(days=i) for i in range(settings.reference_days, 0, -1)])
    if not_before is not None and len(days) < enough:  # never against a reference a reset shrank to a few days
        return ReferenceWindow((), "insufficient")
    return ReferenceWindow(tuple(days), "recent")


def _as_date(value) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    return pd.Timestamp(value).date()


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """BH q-values (step-up, monotone, ≤ 1) for ``p_values``; NaN stays NaN and is not counted."""
    p = np.asarray(p_values, dtype=float)
    q = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m == 0:
        return q
    values = p[ok]
    order = np.argsort(values)
    ranked = values[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(ranked, 1.0)
    q[ok] = out
    return q


def kuiper_p_value(lam: np.ndarray) -> np.ndarray:
    """Asymptotic P(V > λ/√n) of Kuiper's statistic: 2 Σ (4j²λ² − 1) exp(−2j²λ²)."""
    lam = np.asarray(lam, dtype=float)
    j = np.arange(1, 101, dtype=float)[:, None]
    terms = (4 * j * j * lam * lam - 1) * np.exp(-2 * j * j * lam * lam)
    p = 2 * terms.sum(axis=0)
    p = np.where(lam < 0.4, 1.0, p)  # the series is 1 to machine precision there, but slow to converge
    return np.clip(p, 0.0, 1.0)


@dataclass
class _Window:
    """Per-pair sums of one window of daily sketches (arrays over all pairs)."""

    n: np.ndarray
    total: np.ndarray
    total_sq: np.ndarray
    day_sq_over_n: np.ndarray  # Σ_d sum_d² / n_d
    n_sq: np.ndarray  # Σ_d n_d²
    days: np.ndarray  # days with at least one value
    hist: np.ndarray  # pairs × bins

    @property
    def mean(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.total / self.n

    @property
    def within_day_std(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.sqrt(np.maximum((self.total_sq - self.day_sq_over_n) / self.n, 0.0))

    def design_effect(self) -> np.ndarray:
        """1 + (m − 1)·ICC with days as clusters of m hours (one-way ANOVA on the daily sums)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            ss_between = self.day_sq_over_n - self.total**2 / self.n
            ss_within = self.total_sq - self.day_sq_over_n
        return design_effect(self.n, self.days, self.n_sq, ss_between, ss_within)


def design_effect(n, days, n_sq, ss_between, ss_within) -> np.ndarray:
    """1 + (m − 1)·ICC from one-way ANOVA sums of squares, days as groups of m = n / days values."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ms_between = ss_between / (days - 1)
        ms_within = ss_within / (n - days)
        n0 = (n - n_sq / n) / (days - 1)
        icc = (ms_between - ms_within) / (ms_between + (n0 - 1) * ms_within)
        icc = np.where(ms_within > 0, icc, 1.0)  # no spread within days: fully clustered
        icc = np.clip(np.nan_to_num(icc, nan=1.0), 0.0, 1.0)
        per_day = np.where(days > 0, n / np.maximum(days, 1), 1.0)
    return np.maximum(1.0 + (per_day - 1.0) * icc, 1.0)


class _Grid:
    """Daily sketches on a dense (pair, day) grid, pair = station index × n_features + feature."""

    def __init__(self, stats: pd.DataFrame, days: np.ndarray):
        dates = stats["date"].to_numpy().astype("datetime64[D]")
        keep = np.isin(dates, days)
        rows = stats.loc[keep]
        dates = dates[keep]
        station_codes, stations = pd.factorize(rows[STATION].astype(str), sort=True)
        feature_codes, features = pd.factorize(rows["feature"].astype(str), sort=True)
        self.stations = np.asarray(stations, dtype=object)
        self.features = np.asarray(features, dtype=object)
        self.days = np.unique(dates)
        n_pairs, n_days = len(stations) * len(features), len(self.days)
        pair = station_codes * len(features) + feature_codes
        day = np.searchsorted(self.days, dates)
        cell = pair * n_days + day
        if len(np.unique(cell)) < len(cell):
            dup = pd.Series(cell).duplicated(keep=False).to_numpy()
            first = rows.iloc[int(np.flatnonzero(dup)[0])]
            raise ValueError(
                f"feature_stats has more than one row for date {first['date']}, station "
                f"{first[STATION]!r}, feature {first['feature']!r}; pass each day's sketch once"
            )
        self.count = np.zeros((n_pairs, n_days))
        self.total = np.zeros((n_pairs, n_days))
        self.total_sq = np.zeros((n_pairs, n_days))
        self.hist = np.zeros((n_pairs, n_days, len(HIST_COLUMNS)), dtype=np.float32)
        self.count[pair, day] = rows["count"].to_numpy(dtype=float)
        self.total[pair, day] = np.nan_to_num(rows["sum"].to_numpy(dtype=float))
        self.total_sq[pair, day] = np.nan_to_num(rows["sum_sq"].to_numpy(dtype=float))
        self.hist[pair, day] = rows[list(HIST_COLUMNS)].to_numpy(dtype=np.float32)
        # the hours' residuals against the other stations (none in sketches from before they were kept)
        self.residual_count, self.residual_total, self.residual_total_sq = (np.zeros((n_pairs, n_days)) for _ in range(3))
        if "residual_count" in rows:
            self.residual_count[pair, day] = np.nan_to_num(rows["residual_count"].to_numpy(dtype=float))
            self.residual_total[pair, day] = np.nan_to_num(rows["residual_sum"].to_numpy(dtype=float))
            self.residual_total_sq[pair, day] = np.nan_to_num(rows["residual_sum_sq"].to_numpy(dtype=float))
        self.minimum = np.full((n_pairs, n_days), np.nan)  # the day's lowest reading
        if "min" in rows:
            self.minimum[pair, day] = rows["min"].to_numpy(dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.daily_mean = np.where(self.count > 0, self.total / self.count, np.nan)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.stations), len(self.features)

    def mask(self, days: Sequence[date]) -> np.ndarray:
        """A (pairs × days) mask of ``days`` for every pair."""
        row = np.isin(self.days, np.array([np.datetime64(d, "D") for d in days]))
        return np.broadcast_to(row, (len(self.count), len(self.days))).copy()

    def category_dependence(self, pairs: np.ndarray, ref: np.ndarray, day_numbers: np.ndarray):
        """Design effect and day-to-day correlation of categorical ``pairs`` from daily histograms.

        The ANOVA of ``design_effect`` on bin-indicator vectors (Gini variance: within-day
        Σ_d (n_d − Σ_b h_db² / n_d), total N − Σ_b H_b² / N), and the lag-1 correlation of the
        daily bin shares over consecutive reference days.
        """
        hist = self.hist[pairs].astype(float) * ref[pairs][:, :, None]
        per_day = hist.sum(axis=2)
        n, days = per_day.sum(axis=1), (per_day > 0).sum(axis=1)
        totals = hist.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            within = n - np.where(per_day > 0, (hist * hist).sum(axis=2) / per_day, 0.0).sum(axis=1)
            total = n - (totals * totals).sum(axis=1) / n
            deff = design_effect(n, days, (per_day * per_day).sum(axis=1), total - within, within)
            dev = hist / per_day[:, :, None] - (totals / n[:, None])[:, None, :]
            steps = np.flatnonzero(np.diff(day_numbers) == 1)
            lagged = np.nansum(dev[:, steps] * dev[:, steps + 1], axis=(1, 2))
            rho = np.nan_to_num(lagged / np.nansum(dev * dev, axis=(1, 2)))
        return deff, np.clip(rho, 0.0, MAX_DAY_CORRELATION)

    def window(self, mask: np.ndarray) -> _Window:
        """Sums over the days of ``mask`` (pairs × days: each pair may have its own days)."""
        count, total = np.where(mask, self.count, 0.0), np.where(mask, self.total, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            day_sq_over_n = np.where(count > 0, total * total / count, 0.0).sum(axis=1)
        return _Window(
            n=count.sum(axis=1),
            total=total.sum(axis=1),
            total_sq=np.where(mask, self.total_sq, 0.0).sum(axis=1),
            day_sq_over_n=day_sq_over_n,
            n_sq=(count * count).sum(axis=1),
            days=(count > 0).sum(axis=1),
            hist=(self.hist * mask[:, :, None]).sum(axis=1, dtype=np.float64),
        )


def mean_variance_factor(days: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """Var(mean of k consecutive days) / Var(one day) for an AR(1) day series with lag-1 ``rho``."""
    k = np.maximum(np.asarray(days, dtype=float), 1.0)
    rho = np.clip(rho, 0.0, MAX_DAY_CORRELATION)
    one = 1.0 - rho
    inner = rho / one - rho * (1.0 - rho**k) / (k * one * one)
    return (1.0 + 2.0 * inner) / k


@dataclass
class _ShiftTest:
    """Shift of a daily series between the reference and a current window, and its t-test."""

    delta: np.ndarray
    p: np.ndarray
    rho: np.ndarray
    ref_factor: np.ndarray  # mean_variance_factor of the reference days
    cur_factor: np.ndarray


def _shift_test(
    series: np.ndarray, ref: np.ndarray, cur: np.ndarray, day_numbers: np.ndarray, sd_floor: np.ndarray
) -> _ShiftTest:
    """Welch-style t-test of the mean of ``series`` (pairs × days) on ``cur`` days vs ``ref`` days.

    Days are the units; their lag-1 autocorrelation (consecutive reference days) widens the
    standard error so that multi-day weather spells do not count as independent evidence.
    """
    ref_values, cur_values = np.where(ref, series, np.nan), np.where(cur, series, np.nan)
    k_ref = (~np.isnan(ref_values)).sum(axis=1)
    k_cur = (~np.isnan(cur_values)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_ref = np.nansum(ref_values, axis=1) / k_ref
        mean_cur = np.nansum(cur_values, axis=1) / k_cur
        dev = ref_values - mean_ref[:, None]
        ss = np.nansum(dev * dev, axis=1)
        steps = np.flatnonzero(np.diff(day_numbers) == 1)
        lagged = np.nansum(dev[:, steps] * dev[:, steps + 1], axis=1)
        rho = np.clip(np.nan_to_num(lagged / ss), 0.0, MAX_DAY_CORRELATION)
        ref_factor = mean_variance_factor(k_ref, rho)
        cur_factor = mean_variance_factor(k_cur, rho)
        # E[sample variance] of an autocorrelated series is σ²·k(1 − V)/(k − 1): undo that bias.
        var = ss / np.maximum(k_ref * (1.0 - ref_factor), 1e-9)
        sd = np.maximum(np.sqrt(var), sd_floor)
        t = (mean_cur - mean_ref) / (sd * np.sqrt(ref_factor + cur_factor))
        df = np.clip(1.0 / ref_factor - 1.0, 1.0, MAX_T_DF)
        p = 2.0 * sps.t.sf(np.abs(t), df)
    p = np.where((k_ref >= MIN_REFERENCE_DAYS) & (k_cur >= 1), p, np.nan)
    return _ShiftTest(mean_cur - mean_ref, p, rho, ref_factor, cur_factor)


def _peer_offsets(series: np.ndarray, shape: tuple[int, int], min_peers: int) -> np.ndarray:
    """Each station's daily value minus the network median that day, per (pair, day).

    A day needs ``min_peers`` stations with a value. The station stays in its own median: on
    clean days that absorbs part of its noise, and a faulty station moves to the edge of the
    ranking, where it barely moves the median (leaving it out found fewer steps on Beijing cut
    to four stations, and flagged more clean pairs).
    """
    n_stations, n_features = shape
    cube = series.reshape(n_stations, n_features, -1)
    present = (~np.isnan(cube)).sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: no station that day
        centre = np.nanmedian(cube, axis=0)
    centre = np.where(present >= min_peers, centre, np.nan)
    return (cube - centre[None]).reshape(series.shape)


@dataclass
class _Tests:
    """Per-pair statistics and p-values of one current window against the reference."""

    cur: _Window
    mean_shift: np.ndarray
    peer_shift: np.ndarray
    std_ratio: np.ndarray
    ks: np.ndarray
    psi: np.ndarray
    n_eff: np.ndarray
    p_mean: np.ndarray
    p_peer: np.ndarray
    p_std: np.ndarray
    p_ks: np.ndarray

    def strongest(self) -> np.ndarray:
        """The smallest p-value of each pair (inf where nothing was tested)."""
        stacked = np.vstack([self.p_mean, self.p_peer, self.p_std, self.p_ks])
        return np.where(np.isnan(stacked), np.inf, stacked).min(axis=0)


def _histogram_tests(ref: _Window, cur: _Window, n_eff: np.ndarray, circular: np.ndarray):
    """KS (Kuiper for circular features) statistic and p-value, and PSI, from summed histograms."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ref_cdf = np.cumsum(ref.hist, axis=1)[:, :-1] / ref.n[:, None]
        cur_cdf = np.cumsum(cur.hist, axis=1)[:, :-1] / cur.n[:, None]
        diff = cur_cdf - ref_cdf
        ks_linear = np.abs(diff).max(axis=1)
        kuiper = np.maximum(diff.max(axis=1), 0.0) + np.maximum(-diff.min(axis=1), 0.0)
        root = np.sqrt(n_eff)
        p = np.where(
            circular,
            kuiper_p_value((root + 0.155 + 0.24 / root) * kuiper),
            special.kolmogorov((root + 0.12 + 0.11 / root) * ks_linear),
        )
        ref_share = np.maximum(ref.hist / ref.n[:, None], PSI_EPSILON)
        cur_share = np.maximum(cur.hist / cur.n[:, None], PSI_EPSILON)
        psi = np.sum((cur_share - ref_share) * np.log(cur_share / ref_share), axis=1)
    return np.where(circular, kuiper, ks_linear), p, psi


@dataclass
class DriftReport:
    """Per-(station, feature) drift statistics of one current window, and the rules' verdicts.

    ``table`` has one row per pair: ``station, feature, circular, window`` (``full`` or
    ``onset``: the part of the current window the row's numbers come from), ``days``,
    ``ref_count, cur_count, ref_mean, cur_mean, mean_shift, peer_shift, ref_std, cur_std,
    std_ratio, ks, psi, n_eff, p_mean, p_peer, p_std, p_ks, q_mean, q_peer, q_std, q_ks``, the
    flags ``mean_shift_drift, std_ratio_drift, distribution_drift`` and ``severity`` ("" if
    none).
    Flagged rows come first, most severe and most significant first.
    """

    table: pd.DataFrame
    current_days: tuple[date, ...]
    reference_days: tuple[date, ...]
    reference_kind: str
    settings: DriftSettings
    at: datetime = field(default_factory=datetime.now)

    @property
    def flagged(self) -> pd.DataFrame:
        """Rows where at least one rule fired."""
        return self.table[self.table["severity"] != ""]

    @property
    def retrain_rows(self) -> pd.DataFrame:
        """Flagged rows whose change the models feel (retrain); the others only alert (a broken sensor)."""
        return self.table[self.table["action"] == "retrain"]

    @property
    def alert_rows(self) -> pd.DataFrame:
        return self.table[self.table["action"] == "alert"]

    @property
    def severity(self) -> str | None:
        """The highest severity any pair reached, or ``None``."""
        flagged = self.flagged
        if flagged.empty:
            return None
        return max(flagged["severity"], key=SEVERITIES.index)

    def references(self) -> dict[str, dict[str, int]]:
        """Per reference kind used: pairs, and the smallest and largest reference in days."""
        out = {}
        for kind, rows in self.table.groupby("reference_kind", sort=True):
            out[str(kind)] = {"pairs": int(len(rows)), "min_days": int(rows["reference_size"].min()),
                              "max_days": int(rows["reference_size"].max())}
        return out

    def rule_counts(self) -> dict[str, int]:
        """Pairs flagged by each rule."""
        return {
            rule: int(self.table[f"{rule}_drift"].sum()) for rule in ("mean_shift", "std_ratio", "distribution")
        }

    def worst(self, limit: int = 5) -> list[dict[str, Any]]:
        """The most severe flagged pairs with their numbers, as plain dicts."""
        out = []
        for row in self.flagged.head(limit).itertuples(index=False):
            out.append({
                "station": row.station, "feature": row.feature, "severity": row.severity,
                "window": row.window, "rules": _rules_of(row),
                "reference_kind": row.reference_kind, "reference_days": int(row.reference_size),
                "mean_shift": _num(row.mean_shift), "peer_shift": _num(row.peer_shift),
                "std_ratio": _num(row.std_ratio), "ks": _num(row.ks), "psi": _num(row.psi),
                "ref_mean": _num(row.ref_mean), "cur_mean": _num(row.cur_mean),
                "q_mean": _num(row.q_mean), "q_peer": _num(row.q_peer), "q_std": _num(row.q_std),
                "q_ks": _num(row.q_ks),
            })  # fmt: skip
        return out

    def summary(self, limit: int = 3) -> str:
        """One sentence: how many pairs drifted and the worst offenders with their numbers."""
        first, last = self.current_days[0], self.current_days[-1]
        window = f"{first}..{last} against {len(self.reference_days)} {self.reference_kind} reference days"
        tested = int(self.table["p_ks"].notna().sum())
        flagged = self.flagged
        if flagged.empty:
            return f"No drift in {tested} station-features over {window}.{self.coverage_note()}"
        parts = [_describe(row) for row in flagged.head(limit).itertuples(index=False)]
        more = len(flagged) - min(limit, len(flagged))
        tail = f"; {more} more" if more else ""
        return (f"Drift in {len(flagged)} of {tested} station-features over {window}: " + "; ".join(parts) + tail
                + f".{self.coverage_note()}")

    def coverage_note(self) -> str:
        """What the sequential rule cannot see: a network too small for the peer comparison ("" if none)."""
        stations = int(self.table["station"].nunique())
        if self.settings.rule != "sequential" or stations >= self.settings.min_peers:
            return ""
        return (f" Level and spread are compared with peer stations, which needs {self.settings.min_peers} "
                f"stations with readings (drift.min_peers); this network has {stations}, so only flat lines "
                "and silent sensors are checked.")

    def triggers(self, last_triggered_on: date | None = None, at: datetime | None = None) -> list[Trigger]:
        """At most one drift trigger for every model (``"*"``) at the highest severity reached.

        Suppressed within ``cooldown_days`` of ``last_triggered_on``. The key names the current
        window, so sensor ticks over the same days never launch twice.
        """
        retrain = self.retrain_rows
        if retrain.empty:
            return []
        severity = max(retrain["severity"], key=SEVERITIES.index)
        last_day = self.current_days[-1]
        if last_triggered_on is not None and (last_day - last_triggered_on).days < self.settings.cooldown_days:
            return []
        evidence = {
            "current_window": [self.current_days[0].isoformat(), last_day.isoformat()],
            "reference_kind": self.reference_kind,
            "reference_days": len(self.reference_days),
            "references": self.references(),
            "pairs_tested": int(self.table["p_ks"].notna().sum()),
            "pairs_flagged": int(len(self.flagged)),
            "rule_counts": self.rule_counts(),
            "worst": self.worst(),
        }
        return [Trigger(
            ALL_MODELS, "drift", severity, self.summary(), evidence, at or self.at,
            (self.current_days[0], last_day),
        )]


def _num(value) -> float | None:
    value = float(value)
    return None if np.isnan(value) else value


def _rules_of(row) -> list[str]:
    rules = [r for r in ("mean_shift", "std_ratio", "distribution") if getattr(row, f"{r}_drift")]
    return rules + [r for r in ("level_drift", "spread_drift", "flatline", "silent") if getattr(row, r, False)]


def _describe(row) -> str:
    unit = UNITS.get(row.feature, "")
    bits = []
    if row.mean_shift_drift:
        use_peer = not np.isnan(row.q_peer) and (np.isnan(row.q_mean) or row.q_peer < row.q_mean)
        shift, q, how = (row.peer_shift, row.q_peer, " against peers") if use_peer else (row.mean_shift, row.q_mean, "")
        bits.append(f"mean {row.ref_mean:.4g}→{row.cur_mean:.4g} {unit} ({shift:+.0%}{how}, q={q:.1g})")
    if row.std_ratio_drift:
        bits.append(f"within-day std ratio {row.std_ratio:.2f} (q={row.q_std:.1g})")
    if row.distribution_drift:
        name = "Kuiper" if row.circular else "KS"
        bits.append(f"{name} {row.ks:.2f} (q={row.q_ks:.1g}), PSI {row.psi:.2f}")
    if getattr(row, "level_drift", False):
        if getattr(row, "control_drift", False) and row.level_cusum < row.control_cusum:
            bits.append(f"level against peers and its own {row.control_feature} {row.control_shift:+.0%} over "
                        f"{row.control_days} days (CUSUM {row.control_cusum:.1f})")
        else:
            bits.append(f"level against peers {row.level_shift:+.0%} over {row.level_days} days (CUSUM {row.level_cusum:.1f})")
    if getattr(row, "spread_drift", False):
        bits.append(f"hourly scatter around its peers ×{row.spread_ratio:.2f} (CUSUM {row.spread_cusum:.1f})")
    if getattr(row, "flatline", False):
        bits.append(f"one value all day on {row.flat_days} day(s)")
    if getattr(row, "silent", False):
        bits.append(f"no reading for {row.silent_days} day(s)")
    seed_rule = row.mean_shift_drift or row.std_ratio_drift or row.distribution_drift
    window = f", last {row.days} days" if row.window == "onset" and seed_rule else ""
    action = f" [{row.action}]" if getattr(row, "action", "") == "alert" else ""
    return f"{row.severity} {row.feature} at {row.station}{window}{action}: " + ", ".join(bits)


def evaluate_drift(
    stats: pd.DataFrame,
    current_days: Sequence[date],
    reference_days: Sequence[date] | ReferenceWindow,
    settings: DriftSettings,
    at: datetime | None = None,
    pair_references: Mapping[tuple[str, str], Sequence[date] | ReferenceWindow] | None = None,
) -> DriftReport:
    """Compare the current window's sketches with the reference's for every station × feature.

    ``stats`` are concatenated ``feature_stats`` rows, one per (date, station, feature); rows
    of other days are ignored. ``pair_references`` gives some (station, feature) pairs their
    own reference (e.g. the days after a drift trigger that concerned them); an empty one
    leaves the pair untested. Every row says which reference it used (``reference_kind``) and
    its size (``reference_size`` days). See the module docstring for the statistics and rules.
    """
    current = tuple(sorted({_as_date(d) for d in current_days}))
    reference = tuple(sorted({_as_date(d) for d in reference_days}))
    kind = reference_days.kind if isinstance(reference_days, ReferenceWindow) else "given"
    own_refs = {
        (str(st), str(ft)): (tuple(sorted({_as_date(d) for d in days})),
                             days.kind if isinstance(days, ReferenceWindow) else "given")
        for (st, ft), days in (pair_references or {}).items()
    }
    if not current:
        raise ValueError("current_days is empty")
    if not reference and not any(days for days, _ in own_refs.values()):
        raise ValueError("reference_days is empty")
    for days in (reference, *(d for d, _ in own_refs.values())):
        overlap = set(current) & set(days)
        if overlap:
            raise ValueError(f"reference and current windows overlap on {len(overlap)} day(s), first {min(overlap)}")
    windows = {"full": current}
    if settings.onset_days < len(current):
        windows["onset"] = current[-settings.onset_days:]

    previous = tuple(d - timedelta(days=1) for d in current)  # the window of the report a day earlier
    every_day = {*reference, *current, *previous, *(d for days, _ in own_refs.values() for d in days)}
    grid = _Grid(stats, np.array([np.datetime64(d, "D") for d in sorted(every_day)]))
    n_stations, n_features = grid.shape
    n_pairs = n_stations * n_features
    features = np.tile(grid.features, n_stations)
    circular = np.isin(features, list(CIRCULAR_FEATURES))
    histogram_only = np.isin(features, list(HISTOGRAM_ONLY_FEATURES))
    log_scale = np.isin(features, list(LOG_SCALE_FEATURES))
    floor = np.array([MEAN_SHIFT_FLOORS.get(f, DEFAULT_FLOOR) for f in features])

    ref_mask = grid.mask(reference)
    ref_kind = np.full(n_pairs, kind, dtype=object)
    ref_size = np.full(n_pairs, len(reference))
    station_index = {st: i for i, st in enumerate(grid.stations)}
    feature_index = {ft: j for j, ft in enumerate(grid.features)}
    for (st, ft), (days, own_kind) in own_refs.items():
        if st in station_index and ft in feature_index:
            pair = station_index[st] * n_features + feature_index[ft]
            ref_mask[pair] = grid.mask(days)[0] if days else False
            ref_kind[pair], ref_size[pair] = own_kind, len(days)
    ref = grid.window(ref_mask)
    scale = np.fmax(np.abs(ref.mean), floor)
    day_numbers = grid.days.astype("int64")
    deff = ref.design_effect()
    category_rho = np.zeros(n_pairs)
    if circular.any():
        pairs = np.flatnonzero(circular)
        deff[pairs], category_rho[pairs] = grid.category_dependence(pairs, ref_mask, day_numbers)
    with np.errstate(invalid="ignore"):
        logged = np.log(np.maximum(grid.daily_mean, 0.0) + floor[:, None])
        series = np.where(log_scale[:, None], logged, grid.daily_mean)
    offsets = _peer_offsets(series, grid.shape, settings.min_peers)
    with np.errstate(invalid="ignore", divide="ignore"):
        day_var = np.where(grid.count >= 2, grid.total_sq / grid.count - grid.daily_mean**2, np.nan)
        log_var = np.log(np.maximum(day_var, 0.0) + (0.01 * floor[:, None]) ** 2)
    sd_floor = np.where(log_scale, 0.01, 0.01 * floor)
    spread_offsets = _spread_offsets(grid, log_var, ref_mask, sd_floor, settings.min_peers, ~histogram_only)

    tests: dict[str, _Tests] = {}
    for name, days in windows.items():
        cur_mask = grid.mask(days)
        cur = grid.window(cur_mask)
        own = _shift_test(series, ref_mask, cur_mask, day_numbers, sd_floor)
        peer = _shift_test(offsets, ref_mask, cur_mask, day_numbers, sd_floor)
        spread = _shift_test(log_var, ref_mask, cur_mask, day_numbers, np.full(n_pairs, 0.01))
        # Hours per effective observation: dependence within days (ICC) and across days (AR(1)).
        ref_factor = np.where(circular, mean_variance_factor(ref.days, category_rho), own.ref_factor)
        cur_factor = np.where(circular, mean_variance_factor(cur.days, category_rho), own.cur_factor)
        ref_hours = deff * np.maximum(ref.days, 1) * ref_factor
        cur_hours = deff * np.maximum(cur.days, 1) * cur_factor
        with np.errstate(invalid="ignore", divide="ignore"):
            ne_ref, ne_cur = ref.n / ref_hours, cur.n / cur_hours
            n_eff = ne_ref * ne_cur / (ne_ref + ne_cur)
            mean_shift = (cur.mean - ref.mean) / scale
            peer_shift = np.where(log_scale, np.expm1(peer.delta), peer.delta / scale)
            std_ratio = cur.within_day_std / ref.within_day_std
        ks, p_ks, psi = _histogram_tests(ref, cur, n_eff, circular)
        enough = (cur.n >= settings.min_current_values) & (ref.n >= settings.min_reference_values)
        linear = enough & ~histogram_only
        tests[name] = _Tests(
            cur=cur,
            mean_shift=_only(linear, mean_shift),
            peer_shift=_only(linear, peer_shift),
            std_ratio=_only(linear, std_ratio),
            ks=_only(enough, ks),
            psi=_only(enough, psi),
            n_eff=_only(enough, n_eff),
            p_mean=_only(linear, own.p),
            p_peer=_only(linear, peer.p),
            p_std=_only(linear, spread.p),
            p_ks=_only(enough, p_ks),
        )

    full = tests["full"]
    onset = tests.get("onset", full)
    use_onset = onset.strongest() < full.strongest() if "onset" in tests else np.zeros(n_pairs, dtype=bool)
    factor = 2.0 if "onset" in tests else 1.0  # Bonferroni for choosing the window

    def pick(attr: str) -> np.ndarray:
        return np.where(use_onset, getattr(onset, attr), getattr(full, attr))

    families = ("p_mean", "p_peer", "p_std", "p_ks")
    p_mean, p_peer, p_std, p_ks = (np.minimum(pick(a) * factor, 1.0) for a in families)
    q = benjamini_hochberg(np.concatenate([p_mean, p_peer, p_std, p_ks])).reshape(len(families), n_pairs)
    q_mean, q_peer, q_std, q_ks = q

    fdr = settings.false_discovery_rate
    mean_shift, peer_shift, std_ratio, psi = (pick(a) for a in ("mean_shift", "peer_shift", "std_ratio", "psi"))
    with np.errstate(invalid="ignore"):
        distribution_drift = q_ks <= fdr
        mean_drift = ((np.abs(mean_shift) > settings.mean_shift) & (q_mean <= fdr)) | (
            (np.abs(peer_shift) > settings.mean_shift) & (q_peer <= fdr)
        )
        std_drift = (q_std <= fdr) & ((std_ratio > settings.std_ratio_high) | (std_ratio < settings.std_ratio_low))
        high = distribution_drift & (psi > settings.psi)
    severity = np.full(n_pairs, "", dtype=object)
    action = np.full(n_pairs, "", dtype=object)
    sequential_ok = ~histogram_only & (ref.n >= settings.min_reference_values)
    # the features the models are retrained on, when they are a subset: watched more closely
    felt = np.isin(features, list(settings.retrain_features or ()))
    control = _control(offsets, grid.shape, ref_mask, sequential_ok, felt, settings.control_min_r2)
    level, spread, faults, strong_level, strong_spread, (level_before, spread_before), checked = _sequential(
        offsets, spread_offsets, control, day_var, grid, ref_mask,
        grid.mask(current), grid.mask(previous), sequential_ok, sd_floor, settings, felt,
    )
    if settings.rule == "seed":
        severity[distribution_drift | std_drift] = "medium"
        severity[high] = "high"
        severity[mean_drift] = "critical"
        action[severity != ""] = "retrain"
        level_drift = spread_drift = flat_drift = silent_drift = np.zeros(n_pairs, dtype=bool)
    else:
        # a large-shift finding is folded into level/spread.fired; retraining implies a finding
        flat_drift, silent_drift = faults.flat, faults.silent
        level_drift, spread_drift = level.fired, spread.fired & ~flat_drift
        # the window statistics stay in the table for reading; their rules are not applied
        mean_drift = std_drift = distribution_drift = np.zeros(n_pairs, dtype=bool)
        severity[spread_drift] = "high"
        severity[level_drift] = "critical"
        # a pair with a day of one value in the window never retrains, even at the sensor's floor:
        # its offset moved because the sensor stuck (a dead one reading 0 is far below its peers)
        # a spread finding only alerts: a sensor noisier (or smoother) than its peers is the
        # sensor's matter, and models retrained on it would learn the fault
        strong = strong_level.fired & (faults.one_value_days == 0)
        action[level_drift | spread_drift] = "alert"
        action[strong] = "retrain"
        broken = (flat_drift | silent_drift) & ~level_drift
        severity[broken] = "medium"
        action[broken] = "alert"
    if settings.rule == "sequential" and settings.retrain_features is not None:  # models barely feel it: alert
        action[(action == "retrain") & ~felt] = "alert"

    cur_n = np.where(use_onset, onset.cur.n, full.cur.n)
    cur_mean = np.where(use_onset, onset.cur.mean, full.cur.mean)
    cur_std = np.where(use_onset, onset.cur.within_day_std, full.cur.within_day_std)
    table = pd.DataFrame({
        "station": np.repeat(grid.stations, n_features),
        "feature": features,
        "circular": circular,
        "window": np.where(use_onset, "onset", "full"),
        "days": np.where(use_onset, len(windows.get("onset", ())), len(current)),
        "reference_kind": ref_kind,
        "reference_size": ref_size,
        "ref_count": ref.n.astype(int),
        "cur_count": cur_n.astype(int),
        "ref_mean": _only(~circular, ref.mean),
        "cur_mean": _only(~circular, cur_mean),
        "mean_shift": mean_shift,
        "peer_shift": peer_shift,
        "ref_std": _only(~circular, ref.within_day_std),
        "cur_std": _only(~circular, cur_std),
        "std_ratio": std_ratio,
        "ks": pick("ks"),
        "psi": psi,
        "n_eff": pick("n_eff"),
        "p_mean": p_mean, "p_peer": p_peer, "p_std": p_std, "p_ks": p_ks,
        "q_mean": q_mean, "q_peer": q_peer, "q_std": q_std, "q_ks": q_ks,
        "mean_shift_drift": mean_drift,
        "std_ratio_drift": std_drift,
        "distribution_drift": distribution_drift,
        "level_cusum": level.statistic, "level_days": level.days, "level_shift": _level_shift(level, log_scale, scale),
        "control_feature": np.where(control.partner >= 0, features[np.maximum(control.partner, 0)], ""),
        "control_cusum": checked.statistic, "control_days": checked.days,
        "control_shift": _level_shift(checked, log_scale, scale), "control_drift": checked.fired & (settings.rule == "sequential"),
        "spread_cusum": spread.statistic, "spread_days": spread.days, "spread_ratio": np.exp(spread.shift / 2.0),
        "level_large_cusum": strong_level.statistic, "spread_large_cusum": strong_spread.statistic,
        "flat_days": faults.flat_days, "silent_days": faults.silent_days,
        "level_drift": level_drift, "spread_drift": spread_drift, "flatline": flat_drift, "silent": silent_drift,
        "level_before": level_before & (settings.rule == "sequential"),
        "spread_before": spread_before & (settings.rule == "sequential"),
        "severity": severity,
        "action": action,
    })  # fmt: skip
    table = table[(ref.n > 0) | (full.cur.n > 0)]
    rank = table["severity"].map({"": -1, **{s: i for i, s in enumerate(SEVERITIES)}})
    if settings.rule == "seed":
        best = table[["q_mean", "q_peer", "q_std", "q_ks"]].min(axis=1).fillna(1.0)
        ongoing = pd.Series(0, index=table.index)
    else:  # the fastest-growing evidence first: a CUSUM's sum per day of its run
        level_rate = np.fmax(table["level_cusum"] / table["level_days"].clip(lower=1),
                             (table["control_cusum"] / table["control_days"].clip(lower=1)).where(table["control_drift"]))
        level_rate = level_rate.where(table["level_drift"], 0.0)
        spread_rate = (table["spread_cusum"] / table["spread_days"].clip(lower=1)).where(table["spread_drift"], 0.0)
        best = -np.fmax(level_rate.fillna(0.0), spread_rate.fillna(0.0)) - 1e3 * table["flat_days"]
        # a finding the report a day earlier already showed (its charts on the window ending then)
        ongoing = ((table["level_drift"] & table["level_before"])
                   | (table["spread_drift"] & ~table["level_drift"] & table["spread_before"])).astype(int)
    # what retrains first (a trigger's reason starts with why it retrains), then flat lines (a
    # certain fault, not a statistical finding), silent sensors after every other finding (no
    # readings to judge), new findings before ongoing ones, then findings
    # on the forecast target, then severity, then evidence
    acts = (table["action"] != "retrain").astype(int)
    not_flat = (~table["flatline"].astype(bool)).astype(int)
    large = -table[["level_large_cusum", "spread_large_cusum"]].max(axis=1).fillna(0.0)  # ties of the capped rate
    # the retrain features (``felt``, by the table's row index) first; with none named, all alike
    not_target = pd.Series((~felt).astype(int)) if settings.rule == "sequential" else 0
    keys = {"_act": acts, "_flat": not_flat, "_silent": table["silent"].astype(int), "_old": ongoing,
            "_not_target": not_target, "_rank": -rank, "_q": best, "_large": large}
    table = table.assign(**keys).sort_values([*keys, "station", "feature"])
    table = table.drop(columns=list(keys)).reset_index(drop=True)
    return DriftReport(table, current, reference, kind, settings, at or datetime.now())


def _spread_offsets(grid: _Grid, log_var: np.ndarray, ref: np.ndarray, sd_floor: np.ndarray,
                    min_peers: int, charted: np.ndarray) -> np.ndarray:
    """The daily series the spread chart watches, per pair: the peer offset of the log variance
    of the hours' residuals against the other stations (``feature_stats.peer_residuals``). A day
    that swings everywhere leaves it alone, and so does a gain (a step on the log scale), so a
    sensor grown noisier stands out (PM10 std × √2, a hundred cases: found 83 times on the scored
    and on the development years on the fine log scale of ``schema.comparable``, 56 and 45 on
    the coarse one, 28 and 33 with the log within-day variance). A
    pair without residuals on ``SEQUENTIAL_MIN_REFERENCE_DAYS`` reference days (too few peers,
    sketches from before they were kept) keeps that variance, ``log_var``; pairs outside
    ``charted`` (histogram-only features) are not read."""
    with np.errstate(invalid="ignore", divide="ignore"):
        n = grid.residual_count
        var = np.where(n >= 2, grid.residual_total_sq / n - (grid.residual_total / np.maximum(n, 1)) ** 2, np.nan)
        residual = np.log(np.maximum(var, 0.0) + sd_floor[:, None] ** 2)
    has = (ref & np.isfinite(residual)).sum(axis=1) >= SEQUENTIAL_MIN_REFERENCE_DAYS
    if (has | ~charted).all() or not has.any():  # one statistic for every charted pair: one median
        return _peer_offsets(residual if has.any() else log_var, grid.shape, min_peers)
    return np.where(has[:, None], _peer_offsets(residual, grid.shape, min_peers),
                    _peer_offsets(log_var, grid.shape, min_peers))


def _only(keep: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.where(keep, values, np.nan)


@dataclass
class _Cusum:
    """Two-sided CUSUM of a standardized daily series over the current window, per pair."""

    statistic: np.ndarray  # max(S+, S−) on the last day, in reference standard deviations
    days: np.ndarray  # consecutive days of the run behind it (0: no run)
    shift: np.ndarray  # mean shift over that run, in the series' units
    fired: np.ndarray
    centre: np.ndarray  # the reference median the chart measures from


def _cusum(series: np.ndarray, ref: np.ndarray, cur: np.ndarray, ok: np.ndarray, sd_floor: np.ndarray,
           k: float | np.ndarray, h: float, clip: float, min_days: int) -> _Cusum:
    """CUSUM of ``series`` (pairs × days) on ``cur`` days, standardized by the ``ref`` days.

    Centre and scale are the reference median and MAD (robust to the odd local episode), the
    scale widened to the long-run standard deviation of a lag-1 correlated day series. Each day
    adds z − ``k`` (capped at ``clip``, so one extreme day cannot fire alone); the rule fires
    when the sum reaches ``h`` with at least ``min_days`` days in its run.
    """
    ref_values = np.where(ref, series, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        centre = np.nanmedian(ref_values, axis=1)
        mad = 1.4826 * np.nanmedian(np.abs(ref_values - centre[:, None]), axis=1)
        dev = ref_values - centre[:, None]
        lagged = np.nansum(dev[:, :-1] * dev[:, 1:], axis=1)
        rho = np.clip(np.nan_to_num(lagged / np.nansum(dev * dev, axis=1)), 0.0, MAX_DAY_CORRELATION)
        sd = np.sqrt(np.nansum(dev * dev, axis=1) / np.maximum((~np.isnan(dev)).sum(axis=1) - 1, 1))
    count = (~np.isnan(ref_values)).sum(axis=1)
    scale = np.fmax(np.fmax(np.nan_to_num(mad), np.nan_to_num(sd)), sd_floor) * np.sqrt((1.0 + rho) / (1.0 - rho))
    columns = np.flatnonzero(cur.any(axis=0))
    up, down = np.zeros(len(series)), np.zeros(len(series))
    run_up, run_down = np.zeros(len(series), dtype=int), np.zeros(len(series), dtype=int)
    sum_up, sum_down = np.zeros(len(series)), np.zeros(len(series))
    for column in columns:
        value = series[:, column]
        present = ~np.isnan(value) & cur[:, column]
        z = np.clip(np.where(present, (value - centre) / scale, 0.0), -clip, clip)
        dev = np.where(present, value - centre, 0.0)
        up_next, down_next = np.maximum(up + z - k, 0.0), np.maximum(down - z - k, 0.0)
        run_up = np.where(up_next > 0, run_up + present, 0)
        run_down = np.where(down_next > 0, run_down + present, 0)
        sum_up = np.where(up_next > 0, sum_up + dev, 0.0)
        sum_down = np.where(down_next > 0, sum_down + dev, 0.0)
        up, down = up_next, down_next
    use_up = up >= down
    statistic = np.where(use_up, up, down)
    days = np.where(use_up, run_up, run_down)
    with np.errstate(invalid="ignore", divide="ignore"):
        shift = np.where(days > 0, np.where(use_up, sum_up, sum_down) / np.maximum(days, 1), 0.0)
    valid = ok & (count >= SEQUENTIAL_MIN_REFERENCE_DAYS) & np.isfinite(scale)
    fired = valid & (statistic >= h) & (days >= min_days)
    return _Cusum(np.where(valid, statistic, np.nan), np.where(valid, days, 0), np.where(valid, shift, np.nan), fired,
                  centre)


@dataclass
class _Control:
    """Per watched pair, its offset with the part its control feature explains taken out."""

    series: np.ndarray  # offset − beta × the control's offset (NaN: no control)
    partner: np.ndarray  # the control's pair index (−1: none)
    beta: np.ndarray  # the pair's offset per unit of its control's (least squares on those days)


def _control(offsets: np.ndarray, shape: tuple[int, int], ref: np.ndarray, ok: np.ndarray,
             watched: np.ndarray, min_r2: float) -> _Control:
    """Each ``watched`` pair's control: the station's other charted feature whose daily offset it
    follows best on the reference days (squared correlation at least ``min_r2``, on
    ``SEQUENTIAL_MIN_REFERENCE_DAYS`` shared days). A station's PM2.5 and PM10 move together
    against their peers (local dust, a plume), so PM2.5 less β × PM10 is far steadier than
    PM2.5 alone, and a recalibrated PM2.5 analyser moves it while its PM10 does not: on
    Beijing PM10 is the control that explains most (the README's "control chart")."""
    n_features = shape[1]
    series = np.full_like(offsets, np.nan)
    partner = np.full(len(offsets), -1)
    beta = np.full(len(offsets), np.nan)
    for pair in np.flatnonzero(watched & ok):
        station = pair // n_features
        best = (min_r2, -1, 0.0)
        for other in range(station * n_features, (station + 1) * n_features):
            if other == pair or not ok[other]:
                continue
            both = ref[pair] & np.isfinite(offsets[pair]) & np.isfinite(offsets[other])
            if both.sum() < SEQUENTIAL_MIN_REFERENCE_DAYS:
                continue
            y, x = offsets[pair, both] - offsets[pair, both].mean(), offsets[other, both] - offsets[other, both].mean()
            if (x @ x) <= 0 or (y @ y) <= 0:
                continue
            fit = (x @ y) ** 2 / ((x @ x) * (y @ y))
            if fit >= best[0]:
                best = (fit, other, (x @ y) / (x @ x))
        if best[1] >= 0:
            partner[pair], beta[pair] = best[1], best[2]
            series[pair] = offsets[pair] - best[2] * offsets[best[1]]
    return _Control(series, partner, beta)


def _sequential(offsets, spread_offsets, control: _Control, day_var, grid: _Grid, ref: np.ndarray, cur: np.ndarray,
                previous: np.ndarray, ok: np.ndarray, sd_floor: np.ndarray, settings: DriftSettings,
                felt: np.ndarray) -> tuple:
    """The sequential rules: CUSUM of the peer offset (level) and of ``spread_offsets`` (spread,
    ``_spread_offsets``), and broken sensors (``_sensor_faults``: flat lines, silence). Level
    and spread each run two charts: a small-shift CUSUM (``cusum_k``, ``cusum_clip``, finding at
    ``cusum_h``; ``retrain_features_cusum_k`` on the ``felt`` pairs), robust to single days, and
    a large-shift one (``cusum_large_*``) that sees a big step within two days; either makes a
    finding, and only the large-shift level chart at ``cusum_retrain_h`` retrains. Returns (small
    level, small spread, sensor faults, large level, large spread, (level finding, spread
    finding) on the ``previous`` window: what the report a day earlier showed, the control chart);
    a large chart's ``fired`` means it reached ``cusum_retrain_h``, its finding is folded into the
    small one's.

    A watched pair with a control (``_control``) runs a third, small-shift chart on its offset
    less its control's. It makes a level finding (it alerts; what retrains is unchanged) when it
    fires and the pair's own offset carried the move (``_moved_itself``): when the control's
    sensor is what moved, the finding is not the pair's."""
    h, clip, min_days = settings.cusum_h, settings.cusum_clip, settings.min_duration_days
    k = np.where(felt, settings.cusum_k if settings.retrain_features_cusum_k is None
                 else settings.retrain_features_cusum_k, settings.cusum_k)
    strict = (settings.cusum_large_k, settings.cusum_retrain_h, settings.cusum_large_clip, min_days)
    spread_floor = np.full(len(ok), 0.05)

    has_control = control.partner >= 0

    def charts(window: np.ndarray) -> tuple[_Cusum, ...]:
        level = _cusum(offsets, ref, window, ok, sd_floor, k, h, clip, min_days)
        spread = _cusum(spread_offsets, ref, window, ok, spread_floor, k, h, clip, min_days)
        strong_level = _cusum(offsets, ref, window, ok, sd_floor, *strict)
        strong_spread = _cusum(spread_offsets, ref, window, ok, spread_floor, *strict)
        for small, large in ((level, strong_level), (spread, strong_spread)):
            large_finding = (np.nan_to_num(large.statistic) >= settings.cusum_large_h) & (large.days >= min_days)
            small.fired = small.fired | large_finding
        checked = _cusum(control.series, ref, window, ok & has_control, sd_floor, k, h, clip, min_days)
        checked.fired = checked.fired & _moved_itself(offsets, control, level.centre, window, checked)
        level.fired = level.fired | checked.fired
        return level, spread, strong_level, strong_spread, checked

    level, spread, strong_level, strong_spread, checked = charts(cur)
    level_before, spread_before, *_ = charts(previous)
    return (level, spread, _sensor_faults(grid, day_var, ref, cur, min_days), strong_level, strong_spread,
            (level_before.fired, spread_before.fired), checked)


def _moved_itself(offsets: np.ndarray, control: _Control, centre: np.ndarray, window: np.ndarray,
                  checked: _Cusum) -> np.ndarray:
    """Per pair, whether its own offset carried the control chart's move: over the chart's run (the
    window's last ``checked.days`` days), the pair's mean departure from its reference median
    (``centre``) is in the chart's direction and at least β × its control's (the part the control's
    sensor moved)."""
    out = np.zeros(len(offsets), dtype=bool)
    columns = np.flatnonzero(window.any(axis=0))
    for pair in np.flatnonzero(checked.fired & (control.partner >= 0)):
        other, days = control.partner[pair], columns[-max(int(checked.days[pair]), 1):]
        mine = np.nanmean(offsets[pair, days] - centre[pair])
        theirs = control.beta[pair] * np.nanmean(offsets[other, days] - centre[other])
        out[pair] = np.sign(mine) == np.sign(checked.shift[pair]) and abs(mine) >= abs(np.nan_to_num(theirs))
    return out


@dataclass
class _SensorFaults:
    """Per pair, what a broken sensor looks like in the current window (no statistics needed)."""

    flat_days: np.ndarray  # days of one value all day, above the sensor's floor
    flat: np.ndarray  # a flat line on one of the last two days, where the reference had almost none
    one_value_days: np.ndarray  # days of one value all day, at the floor or not
    silent_days: np.ndarray  # days without a reading at the end of the window
    silent: np.ndarray  # no reading for the last min_days days, after readings on most reference days


def _sensor_faults(grid: _Grid, day_var: np.ndarray, ref: np.ndarray, cur: np.ndarray, min_days: int) -> _SensorFaults:
    """Flat lines and silent sensors of every pair (see ``_SensorFaults``).

    A day of one value is the sensor's floor, not a fault, when it lies between the lowest of
    the pair's daily minima in the reference and their ``FLAT_FLOOR_QUANTILE`` (a pollutant near
    its detection limit or at its resolution: SO2 at 3 µg/m³, CO at 200 in steps of 100 read flat
    on a clean day); below anything the sensor read before (a dead sensor reading 0) it is one.
    """
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        minima = np.where(ref, grid.minimum, np.nan)
        floor, lowest = np.nanquantile(minima, FLAT_FLOOR_QUANTILE, axis=1), np.nanmin(minima, axis=1)
        one_value = (grid.count >= FLAT_MIN_VALUES) & (day_var <= 1e-12)
        at_floor = (grid.daily_mean <= floor[:, None] + 1e-9) & (grid.daily_mean >= lowest[:, None] - 1e-9)
    flat_day = one_value & ~at_floor
    ref_days = np.maximum(ref.sum(axis=1), 1)
    flat_before = (flat_day & ref).sum(axis=1) / np.maximum((ref & (grid.count > 0)).sum(axis=1), 1)
    last = np.flatnonzero(cur.any(axis=0))
    recent = flat_day[:, last[-min(len(last), 2):]].any(axis=1) if len(last) else np.zeros(len(ref), dtype=bool)
    # silent: the run of days without a reading that ends the window
    quiet = (grid.count[:, last] == 0)[:, ::-1] if len(last) else np.zeros((len(ref), 0), dtype=bool)
    silent_days = np.where(quiet.all(axis=1), quiet.shape[1], np.argmin(quiet, axis=1))
    reported = (ref & (grid.count > 0)).sum(axis=1) / ref_days
    return _SensorFaults(
        flat_days=(flat_day & cur).sum(axis=1),
        flat=recent & (flat_before < 0.05),
        one_value_days=(one_value & cur).sum(axis=1),
        silent_days=silent_days,
        silent=(silent_days >= min_days) & (reported >= SILENT_MIN_REFERENCE_SHARE),
    )


def _level_shift(level: _Cusum, log_scale: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The level CUSUM's shift as a relative change (log features) or in units of the feature's scale."""
    return np.where(log_scale, np.expm1(level.shift), level.shift / scale)


@dataclass(frozen=True)
class DriftState:
    """What the drift check carries from one evaluation to the next (the sensor's cursor).

    ``last_trigger``: the last day of the current window of the latest drift trigger whose
    retraining was actually requested (its cooldown runs from there). ``resets``: per
    (station, feature) the first day of that pair's own reference — the pairs a requested
    trigger concerned; after the retrain their new level is the normal. Every other pair keeps
    the configured (seasonal) reference, so one trigger never shrinks the whole reference.
    ``fault_alerted``: per broken sensor (a flat-lining or silent station-feature) the day it
    was last alerted, so a sensor stuck for weeks is one alert and a reminder every
    ``cooldown_days``, not one a day.
    """

    last_trigger: date | None = None
    resets: Mapping[tuple[str, str], date] = field(default_factory=dict)
    fault_alerted: Mapping[tuple[str, str], date] = field(default_factory=dict)

    def sensor_fault_alerts(self, report: DriftReport) -> tuple[list[tuple[str, str, str]], DriftState]:
        """The broken sensors of ``report`` to alert now (new, or last alerted ``cooldown_days``
        or more ago) as (station, feature, ``"flat line"`` or ``"silent"``), and the state that
        remembers them. Every flat line is alerted; a silent sensor only on a feature the models
        are retrained on (``retrain_features``: the target by default), where they can neither
        be fed nor scored — other outages are findings in the report (Beijing's CO and SO2
        analysers were down for days at a time far more often than its PM2.5 ones in 2013–2015)."""
        today = report.current_days[-1]
        settings = report.settings
        cooldown = settings.cooldown_days
        rows = report.alert_rows
        felt = rows["feature"].isin(settings.retrain_features) if settings.retrain_features is not None else True
        pushed = rows["flatline"].astype(bool) | (rows["silent"].astype(bool) & felt)
        broken = [(str(r.station), str(r.feature), "flat line" if r.flatline else "silent")
                  for r in rows[pushed].itertuples(index=False)]
        recent = {pair: day for pair, day in self.fault_alerted.items() if 0 <= (today - day).days < max(cooldown, 1)}
        due = [fault for fault in broken if fault[:2] not in recent]
        return due, replace(self, fault_alerted={**recent, **{fault[:2]: today for fault in due}})

    def fired(self, report: DriftReport) -> DriftState:
        """The state after ``report``'s trigger was requested: cooldown from its last day, and its
        flagged pairs' references restart the day after."""
        last = report.current_days[-1]
        after = last + timedelta(days=1)
        settings = report.settings
        reach = settings.reference_days + settings.current_days
        if settings.rule == "seed" and settings.reference == "seasonal":
            reach += SEASONAL_SHIFT_DAYS * settings.seasonal_years
        # a restart older than any reference can reach no longer restricts anything: forget it
        resets = {pair: day for pair, day in self.resets.items() if (after - day).days <= reach}
        for row in report.retrain_rows[["station", "feature"]].itertuples(index=False):
            resets[(str(row.station), str(row.feature))] = after
        return DriftState(last, resets, self.fault_alerted)

    def to_json(self) -> dict[str, Any]:
        return {
            "last_trigger": self.last_trigger.isoformat() if self.last_trigger else None,
            "resets": [[st, ft, day.isoformat()] for (st, ft), day in sorted(self.resets.items())],
            "fault_alerted": [[st, ft, day.isoformat()] for (st, ft), day in sorted(self.fault_alerted.items())],
        }

    @classmethod
    def from_json(cls, value: Any) -> DriftState:
        """From ``to_json`` output; a bare date string (the older cursor) is ``last_trigger`` alone,
        and an older cursor's ``flat_alerted`` is read as ``fault_alerted``."""
        if not value:
            return cls()
        if isinstance(value, str):
            return cls(date.fromisoformat(value))
        last = value.get("last_trigger")
        resets, alerted = ({(str(st), str(ft)): date.fromisoformat(day) for st, ft, day in value.get(key, [])}
                           for key in ("resets", "fault_alerted" if "fault_alerted" in value else "flat_alerted"))
        return cls(date.fromisoformat(last) if last else None, resets, alerted)


#: ``read(days)``: the ``feature_stats`` rows of ``days`` (e.g. from the lake).
StatsReader = Callable[[Sequence[date]], pd.DataFrame]


def check_drift(
    stats: pd.DataFrame | StatsReader, last_day: date, settings: DriftSettings, state: DriftState | None = None,
    at: datetime | None = None, available: Iterable[date] | None = None,
) -> DriftReport | None:
    """The drift check the sensor and the backtest both run: the current window ending
    ``last_day`` against its reference windows.

    ``stats`` are sketch rows, or a reader of the days needed (then ``available`` lists the
    stored days). Pairs in ``state.resets`` use only days from their reset on (seasonal if
    earlier years already reach past it, else recent), and wait untested until they have
    enough; every other pair uses the configured reference. ``None`` when no pair has a
    reference or the current window has no sketches. Cooldown is applied by
    ``DriftReport.triggers(state.last_trigger)``.
    """
    state = state or DriftState()
    if isinstance(stats, pd.DataFrame):
        frame: pd.DataFrame | None = stats
        available = [_as_date(d) for d in np.unique(stats["date"].to_numpy().astype("datetime64[D]"))]
    else:
        frame = None
        if available is None:
            raise ValueError("check_drift needs the available days when it reads sketches itself")
        available = [_as_date(d) for d in available]
    current = current_window(last_day, settings)
    if not set(current) & set(available):
        return None
    # The sequential rule follows each station against its peers: that offset is steady across
    # seasons but not across years, so its normal is the recent past, not last year's weeks.
    choose = settings.model_copy(update={"reference": "recent"}) if settings.rule == "sequential" else settings
    available = frozenset(available)
    reference = reference_window(current, choose, available)
    own = {pair: reference_window(current, choose, available, not_before=day)
           for pair, day in state.resets.items() if day > reference_window_start(reference, current)}
    if not len(reference) and not any(len(w) for w in own.values()):
        return None
    if frame is None:
        days = sorted({*current, *reference, *(d for w in own.values() for d in w)})
        frame = stats(days)
    return evaluate_drift(frame, current, reference, settings, at, pair_references=own)


def reference_window_start(reference: ReferenceWindow, current: Sequence[date]) -> date:
    """The first day ``reference`` uses (the current window's first day when it is empty)."""
    return min(reference.days) if len(reference) else min(current)
