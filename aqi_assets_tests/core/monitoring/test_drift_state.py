"""Drift mechanics: one check for sensor and backtest, references that never silently shrink."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from aqi_assets.core.backtest import policies as backtest_policies
from aqi_assets.core.monitoring import drift
from aqi_assets.core.monitoring import checks as monitoring
from aqi_assets.core.backtest.policies import Policy, PolicyState, decide
from aqi_assets.core.configuration.config import DriftSettings, RetrainingConfig
from aqi_assets.core.monitoring.drift import DriftState, check_drift, current_window, reference_window
from aqi_assets.core.data.faults import Fault
from aqi_assets.core.data.feature_stats import compute_feature_stats
from aqi_assets.core.data.lake import Lake

RECENT = DriftSettings(rule="seed", reference="recent", reference_days=30)
FIRST = date(2024, 1, 1)


def sketch_hours(frame: pd.DataFrame, fault: Fault | None = None, **sketch_options) -> pd.DataFrame:
    """Daily sketches of an hourly ``frame`` of many days, with ``fault`` injected first."""
    frame = fault.apply(frame) if fault else frame
    frame = frame.assign(station=frame["station"] + "|" + frame["timestamp"].dt.date.astype(str))
    stats = compute_feature_stats(frame, FIRST, **sketch_options)
    station_day = stats["station"].str.split("|", expand=True)
    return stats.assign(station=station_day[0], date=pd.to_datetime(station_day[1]))


def network_stats(hourly, days: int, stations: int, seed: int, fault: Fault | None) -> pd.DataFrame:
    """Sketches of ``stations`` stations over ``days`` days sharing a daily factor ``common``:
    ``hourly(rng, common, day, station)`` gives a station-day's 24 values per column."""
    rng = np.random.default_rng(seed)
    parts = []
    for i in range(days):
        day = FIRST + timedelta(days=i)
        common = rng.normal(0, 0.4)
        stamps = pd.date_range(pd.Timestamp(day), periods=24, freq="h")
        parts += [pd.DataFrame({"timestamp": stamps, "station": f"T{s}", **hourly(rng, common, day, f"T{s}")})
                  for s in range(stations)]
    return sketch_hours(pd.concat(parts, ignore_index=True), fault)


def small_network_stats(days: int = 70, stations: int = 6, step: tuple[str, date, float] | None = None,
                        seed: int = 0, fault: Fault | None = None) -> pd.DataFrame:
    """Sketches of a small network measuring only pm25 and wind speed (a shared daily weather
    factor), with ``fault`` injected into its hourly rows."""

    def hourly(rng, common, day, name):
        pm = np.exp(3.5 + common + rng.normal(0, 0.25, 24))
        if step and step[0] == name and day >= step[1]:
            pm = pm * step[2]
        return {"pm25": pm, "wind_speed": np.exp(0.5 + 0.3 * common + rng.normal(0, 0.2, 24))}

    return network_stats(hourly, days, stations, seed, fault)


def row(report, station, feature):
    return report.table.query("station == @station and feature == @feature").iloc[0]


def test_recent_reference_that_shrank_is_not_used():
    current = current_window(date(2025, 11, 26), RECENT)
    cut = reference_window(current, RECENT, None, not_before=date(2025, 11, 10))  # 10 of 30 days left
    assert (cut.kind, len(cut)) == ("insufficient", 0)
    enough = reference_window(current, RECENT, None, not_before=date(2025, 11, 5))  # 15 days
    assert (enough.kind, len(enough)) == ("recent", 15)


def test_a_trigger_resets_only_the_pairs_it_concerned():
    stats = small_network_stats(step=("T2", FIRST + timedelta(days=45), 1.8))
    trigger_day = FIRST + timedelta(days=47)
    report = check_drift(stats, trigger_day, RECENT)
    assert report.triggers() and set(report.flagged["station"]) == {"T2"}
    state = DriftState().fired(report)
    assert state.last_trigger == trigger_day
    assert set(state.resets) == {("T2", "pm25")}
    # Ten days later: every other pair still uses the full 30-day reference; T2's pm25 waits
    # (10 days of its new level are fewer than half the reference) instead of being tested
    # against a reference that shrank to a few days.
    later = check_drift(stats, trigger_day + timedelta(days=10), RECENT, state)
    other = row(later, "T0", "pm25")
    assert (other["reference_kind"], other["reference_size"]) == ("recent", 30)
    waiting = row(later, "T2", "pm25")
    assert (waiting["reference_kind"], waiting["reference_size"]) == ("insufficient", 0)
    assert np.isnan(waiting["p_peer"]) and waiting["severity"] == ""
    assert later.references()["insufficient"]["pairs"] == 1
    assert later.triggers(state.last_trigger) == []
    # Once 15 days of the new level exist they are T2's reference; the step is now the normal.
    settled = check_drift(stats, trigger_day + timedelta(days=22), RECENT, state)
    own = row(settled, "T2", "pm25")
    assert (own["reference_kind"], own["reference_size"]) == ("recent", 15)
    assert own["severity"] == "" and settled.triggers(state.last_trigger) == []


def test_state_round_trips_through_the_cursor_and_reads_the_older_cursor():
    state = DriftState(date(2024, 2, 3), {("T2", "pm25"): date(2024, 2, 4)})
    assert DriftState.from_json(state.to_json()) == state
    assert DriftState.from_json({"last_trigger": "2024-02-03"}) == DriftState(date(2024, 2, 3))
    assert DriftState.from_json("2024-02-03") == DriftState(date(2024, 2, 3))
    assert DriftState.from_json(None) == DriftState()


def test_sensor_and_backtest_run_the_same_check(tmp_path):
    stats = small_network_stats(step=("T2", FIRST + timedelta(days=45), 1.8), seed=3)
    lake = Lake(tmp_path)
    for day, part in stats.groupby("date"):
        lake.write_frame("feature_stats", day.date().isoformat(), part)
    config = RetrainingConfig.model_validate({"drift": RECENT.model_dump()})
    # The backtest's decision on the step day and the sensor's check on the same stored days agree.
    policy = Policy("drift", drift=config.drift_in_force())
    state = PolicyState(FIRST + timedelta(days=30))
    day = FIRST + timedelta(days=47)
    found = decide(policy, state, day, pd.DataFrame(), stats)
    report, triggers = monitoring.check_drift(lake, config, DriftState(), as_of=day)
    assert [t.key for t in found] == [t.key for t in triggers]
    assert state.drift == DriftState().fired(report)
    later = day + timedelta(days=10)
    replayed = check_drift(stats, later, config.drift_in_force(), state.drift)
    sensed, _ = monitoring.check_drift(lake, config, state.drift, as_of=later)
    pd.testing.assert_frame_equal(replayed.table, sensed.table)
    assert backtest_policies.check_drift is drift.check_drift


SEQUENTIAL = DriftSettings(rule="sequential", reference_days=30, cusum_k=1.0, cusum_h=6.0, cusum_large_h=6.0, cusum_retrain_h=6.0,
                           cusum_clip=4.0, retrain_features=None)


def test_sequential_rule_names_a_step_at_one_station_after_two_days():
    step_day = FIRST + timedelta(days=45)
    stepped = small_network_stats(step=("T2", step_day, 1.5), seed=5)
    clean = small_network_stats(seed=5)
    assert check_drift(clean, step_day + timedelta(days=1), SEQUENTIAL).flagged.empty
    first_day = check_drift(stepped, step_day, SEQUENTIAL)
    assert first_day.flagged.empty  # one day is never enough (min_duration_days = 2)
    report = check_drift(stepped, step_day + timedelta(days=1), SEQUENTIAL)
    top = report.flagged.iloc[0]
    assert (top["station"], top["feature"], top["severity"], top["action"]) == ("T2", "pm25", "critical", "retrain")
    assert top["level_days"] == 2 and 0.3 < top["level_shift"] < 0.6  # ×1.5 on log(mean + 10)
    assert set(report.flagged["station"]) == {"T2"}
    (trigger,) = report.triggers()
    assert trigger.evidence["worst"][0]["station"] == "T2"


def test_sequential_rule_sees_a_wider_spread_and_a_flat_line_alerts_only():
    stats = small_network_stats(seed=6)
    day = FIRST + timedelta(days=50)
    pm = (stats["station"] == "T4") & (stats["feature"] == "pm25") & (stats["date"] >= pd.Timestamp(day - timedelta(days=1)))
    # T4's pm25 reads one value all day on the last two days: sum_sq = sum² / n.
    flat = stats.copy()
    flat.loc[pm, "sum_sq"] = flat.loc[pm, "sum"] ** 2 / flat.loc[pm, "count"]
    report = check_drift(flat, day, SEQUENTIAL)
    row = report.flagged.iloc[0]
    assert (row["station"], row["feature"], row["action"], bool(row["flatline"])) == ("T4", "pm25", "alert", True)
    assert report.triggers() == [] and len(report.alert_rows) == 1
    # Within-day std × 2 at T1 for three days: a spread change against the peers, alerted (a
    # sensor noisier than its peers is the sensor's matter; retraining would learn the fault).
    wide = small_network_stats(seed=6, fault=Fault("spread", "T1", "wind_speed", day - timedelta(days=2), factor=2.0))
    spread = check_drift(wide, day, SEQUENTIAL)
    top = spread.flagged.iloc[0]
    assert (top["station"], top["feature"], bool(top["spread_drift"]), top["action"]) == ("T1", "wind_speed", True, "alert")
    assert spread.triggers() == []
    assert top["spread_ratio"] == pytest.approx(2.0, rel=0.25)


def test_a_flat_line_at_the_sensors_floor_is_not_a_fault_but_one_above_it_is():
    stats = small_network_stats(seed=6)
    day = FIRST + timedelta(days=50)
    pair = (stats["station"] == "T4") & (stats["feature"] == "pm25")
    reference = pair & (stats["date"] < pd.Timestamp(day - timedelta(days=7)))
    # the lower quartile of the daily minima: a sensor near its detection limit, or reading in
    # coarse steps, sits there all day on a clean day (Beijing: SO2 at 3, CO at 200)
    floor = float(np.quantile(stats.loc[reference, "min"], 0.25))
    last = pair & (stats["date"] >= pd.Timestamp(day - timedelta(days=1)))

    def flat_at(value: float) -> pd.DataFrame:
        flat = stats.copy()
        flat.loc[last, ["sum", "sum_sq", "min", "max"]] = [value * 24, value**2 * 24, value, value]
        return flat

    for value in (stats.loc[reference, "min"].min(), floor):
        table = check_drift(flat_at(value), day, SEQUENTIAL).table
        assert not table.query("station == 'T4' and feature == 'pm25'")["flatline"].any()
    typical = float(stats.loc[reference, "mean"].median())  # stuck at an ordinary reading: a fault
    assert typical > floor + 1.0
    row = check_drift(flat_at(typical), day, SEQUENTIAL).flagged.iloc[0]
    assert (row["station"], row["feature"], bool(row["flatline"])) == ("T4", "pm25", True)


def test_a_stuck_sensor_is_alerted_when_it_starts_reminded_weekly_and_never_retrained():
    stats = small_network_stats(days=70, seed=6)
    start = FIRST + timedelta(days=49)
    for station, feature, first in (("T4", "pm25", start), ("T1", "wind_speed", start + timedelta(days=3))):
        pair = (stats["station"] == station) & (stats["feature"] == feature)
        value = float(stats.loc[pair, "mean"].median())  # its ordinary level, all day
        stuck = pair & (stats["date"] >= pd.Timestamp(first))
        stats.loc[stuck, ["sum", "sum_sq", "min", "max"]] = [value * 24, value**2 * 24, value, value]
    state, alerted, level = DriftState(), {}, []
    for offset in range(12):  # one check a day, as the sensor
        day = start + timedelta(days=offset)
        report = check_drift(stats, day, SEQUENTIAL, state)
        # stuck at its usual level while the weather moves its peers: the level chart sees it
        # too, but a pair with a flat day never retrains; the flat line alerts
        assert report.triggers() == []
        level.append(bool(report.flagged.query("station == 'T4'")["level_drift"].any()))
        due, state = state.sensor_fault_alerts(report)
        alerted[offset] = due
    t4, t1 = [("T4", "pm25", "flat line")], [("T1", "wind_speed", "flat line")]
    # T4 again after the 7-day cooldown (a reminder), T1 a week after its own first alert
    assert {offset: due for offset, due in alerted.items() if due} == {0: t4, 3: t1, 7: t4, 10: t1}
    assert any(level)
    assert DriftState.from_json(state.to_json()) == state


def test_a_dead_sensor_reading_zero_on_the_target_is_alerted_and_never_retrained():
    stats = small_network_stats(days=70, seed=6)
    start = FIRST + timedelta(days=49)
    dead = (stats["station"] == "T4") & (stats["feature"] == "pm25") & (stats["date"] >= pd.Timestamp(start))
    stats.loc[dead, ["sum", "sum_sq", "min", "max", "p05", "p25", "p50", "p75", "p95"]] = 0.0
    state, alerts = DriftState(), []
    for offset in range(5):
        report = check_drift(stats, start + timedelta(days=offset), SEQUENTIAL, state)
        top = report.flagged.iloc[0]
        # 0 is below every daily minimum it read before: not its floor, a flat line; its level
        # against the peers collapses too, but a sensor reading one value never retrains
        assert (top["station"], top["feature"], bool(top["flatline"]), top["action"]) == ("T4", "pm25", True, "alert")
        assert report.triggers() == []
        due, state = state.sensor_fault_alerts(report)
        alerts.append(due)
    assert alerts == [[("T4", "pm25", "flat line")], [], [], [], []]
    assert report.flagged.iloc[0]["level_large_cusum"] >= SEQUENTIAL.cusum_retrain_h  # it would have retrained


def test_a_silent_sensor_is_alerted_from_its_second_day_and_never_retrained():
    stats = small_network_stats(days=70, seed=6)
    start = FIRST + timedelta(days=49)
    quiet = (stats["station"] == "T1") & (stats["feature"] == "wind_speed") & (stats["date"] >= pd.Timestamp(start))
    stats.loc[quiet, ["count", "sum", "sum_sq"]] = 0
    stats.loc[quiet, ["mean", "std", "min", "max"]] = np.nan
    stats.loc[quiet, [c for c in stats.columns if c.startswith("h") and c[1:].isdigit()]] = 0
    first = check_drift(stats, start, SEQUENTIAL)  # one day without readings: an outage may end
    assert not first.table["silent"].any() and first.flagged.empty
    state = DriftState()
    for offset, expected in ((1, [("T1", "wind_speed", "silent")]), (2, []), (8, [("T1", "wind_speed", "silent")])):
        report = check_drift(stats, start + timedelta(days=offset), SEQUENTIAL, state)
        top = report.flagged.iloc[0]
        assert (top["station"], top["feature"], bool(top["silent"]), top["action"]) == ("T1", "wind_speed", True, "alert")
        assert top["silent_days"] == min(offset + 1, SEQUENTIAL.current_days) and report.triggers() == []
        assert "no reading for" in report.summary()
        due, state = state.sensor_fault_alerts(report)
        assert due == expected  # when it goes silent, then a reminder after drift.cooldown_days
    # silent elsewhere than what the models are retrained on: in the report, not pushed
    target_only = SEQUENTIAL.model_copy(update={"retrain_features": ["pm25"]})
    report = check_drift(stats, start + timedelta(days=1), target_only)
    assert report.flagged.iloc[0]["silent"] and DriftState().sensor_fault_alerts(report)[0] == []
    # a station-feature that never reported is not silent: nothing measured it
    never = stats[~((stats["station"] == "T1") & (stats["feature"] == "wind_speed"))]
    assert not check_drift(never, start + timedelta(days=3), SEQUENTIAL).table["silent"].any()


def test_a_flat_line_is_named_before_stronger_statistical_findings_that_only_alert():
    day = FIRST + timedelta(days=50)
    stats = small_network_stats(step=("T2", day - timedelta(days=3), 3.0), seed=6)  # T2 pm25 ×3: a strong level finding
    pm = (stats["station"] == "T4") & (stats["feature"] == "pm25") & (stats["date"] >= pd.Timestamp(day - timedelta(days=1)))
    stats.loc[pm, "sum_sq"] = stats.loc[pm, "sum"] ** 2 / stats.loc[pm, "count"]
    alert_only = SEQUENTIAL.model_copy(update={"retrain_features": ["wind_speed"]})
    report = check_drift(stats, day, alert_only)
    flagged = report.flagged
    assert list(zip(flagged["station"], flagged["feature"]))[:2] == [("T4", "pm25"), ("T2", "pm25")]
    assert bool(flagged.iloc[0]["flatline"]) and flagged.iloc[1]["level_cusum"] > 6.0
    assert report.triggers() == [] and report.summary().index("T4") < report.summary().index("T2")


def test_among_new_findings_the_forecast_target_is_named_first():
    day = FIRST + timedelta(days=50)
    # T2 pm25 ×1.6 and T3 wind ×3, both for three days
    stats = small_network_stats(step=("T2", day - timedelta(days=2), 1.6), seed=6,
                                fault=Fault("step", "T3", "wind_speed", day - timedelta(days=2), factor=3.0))
    alert_only = SEQUENTIAL.model_copy(update={"cusum_retrain_h": 1e6})  # findings only: nothing retrains

    def first(retrain_features):
        flagged = check_drift(stats, day, alert_only.model_copy(update={"retrain_features": retrain_features})).flagged
        assert {("T2", "pm25"), ("T3", "wind_speed")} <= set(zip(flagged["station"], flagged["feature"]))
        return tuple(flagged.iloc[0][["station", "feature"]])

    assert first(None) == ("T3", "wind_speed")  # every feature counts alike: the stronger evidence first
    assert first(["pm25"]) == ("T2", "pm25")  # what the models predict comes first
    assert first(["wind_speed"]) == ("T3", "wind_speed")


def test_the_forecast_target_is_watched_more_closely_than_the_other_inputs():
    step_day = FIRST + timedelta(days=45)
    stats = small_network_stats(step=("T2", step_day, 1.15), seed=5)  # a small step on T2's PM2.5
    shipped = DriftSettings(rule="sequential", reference_days=30, retrain_features=["pm25"])
    assert shipped.retrain_features_cusum_k == 0.5 < shipped.cusum_k
    day = step_day + timedelta(days=2)

    def t2(settings):
        return check_drift(stats, day, settings).table.set_index(["station", "feature"]).loc[("T2", "pm25")]

    # on its third day: the target's chart (allowance 0.5) has found it, one at cusum_k (0.75) not yet
    assert t2(shipped)["level_drift"] and not t2(shipped.model_copy(update={"retrain_features_cusum_k": None}))["level_drift"]
    # with every feature retraining there is no subset to watch more closely: cusum_k for all
    assert not t2(shipped.model_copy(update={"retrain_features": None}))["level_drift"]


def test_a_finding_the_report_showed_a_day_earlier_ranks_after_a_new_one():
    day = FIRST + timedelta(days=50)
    # T2 pm25 ×1.6 for five days, T3 wind ×3 for two
    stats = small_network_stats(step=("T2", day - timedelta(days=4), 1.6), seed=6,
                                fault=Fault("step", "T3", "wind_speed", day - timedelta(days=1), factor=3.0))
    settings = SEQUENTIAL.model_copy(update={"cusum_retrain_h": 1e6, "retrain_features": ["pm25"]})
    flagged = check_drift(stats, day, settings).flagged
    pairs = list(zip(flagged["station"], flagged["feature"]))
    # T2's PM2.5 is the target and its run is shorter than the window, but yesterday's report
    # already showed it: the new wind finding comes first
    assert pairs[:2] == [("T3", "wind_speed"), ("T2", "pm25")] and flagged.iloc[1]["level_days"] < 7
    assert flagged.iloc[1]["level_before"] and not flagged.iloc[0]["level_before"]


def test_seed_rule_is_still_available():
    stats = small_network_stats(step=("T2", FIRST + timedelta(days=45), 1.8))
    report = check_drift(stats, FIRST + timedelta(days=47), RECENT.model_copy(update={"rule": "seed"}))
    assert set(report.flagged["station"]) == {"T2"} and report.flagged.iloc[0]["mean_shift_drift"]
    assert not report.table["level_drift"].any() and set(report.flagged["action"]) == {"retrain"}


def test_sequential_default_alerts_on_weak_evidence_and_retrains_on_the_target_only():
    step_day = FIRST + timedelta(days=45)
    stats = small_network_stats(step=("T2", step_day, 3.0), seed=5)
    wind = small_network_stats(step=("T2", step_day, 3.0), seed=5, fault=Fault("step", "T3", "wind_speed", step_day, factor=3.0))
    # shipped: both ×3 steps are findings on their second day (the large-shift chart at 8), alerts
    settings = RetrainingConfig(drift=DriftSettings(rule="sequential")).drift_in_force()
    second = check_drift(wind, step_day + timedelta(days=1), settings)
    actions = {(r.station, r.feature): r.action for r in second.flagged.itertuples()}
    assert actions == {("T2", "pm25"): "alert", ("T3", "wind_speed"): "alert"} and second.triggers() == []
    assert (second.flagged["level_large_cusum"] >= 8.0).all()
    # on the third day the large-shift chart reaches 14: retrain, on the forecast target only (pm25 by default)
    report = check_drift(wind, step_day + timedelta(days=2), settings)
    actions = {(r.station, r.feature): r.action for r in report.flagged.itertuples()}
    assert actions == {("T2", "pm25"): "retrain", ("T3", "wind_speed"): "alert"}
    assert DriftState().fired(report).resets.keys() == {("T2", "pm25")}  # only what the retrain concerned
    held = check_drift(wind, step_day + timedelta(days=2), settings.model_copy(update={"cusum_retrain_h": 50.0}))
    assert held.triggers() == [] and set(held.alert_rows["station"]) == {"T2", "T3"}


def test_sequential_summary_says_what_moved_and_by_how_much():
    step_day = FIRST + timedelta(days=45)
    report = check_drift(small_network_stats(step=("T2", step_day, 1.5), seed=5), step_day + timedelta(days=1), SEQUENTIAL)
    assert "critical pm25 at T2: level against peers +" in report.summary() and "over 2 days" in report.summary()
    assert report.worst()[0]["rules"] == ["level_drift"]


def test_restarts_no_reference_can_reach_are_forgotten():
    stats = small_network_stats(step=("T2", FIRST + timedelta(days=45), 1.8))
    report = check_drift(stats, FIRST + timedelta(days=47), RECENT)
    old = DriftState(FIRST, {("T5", "wind_speed"): FIRST, ("T1", "pm25"): FIRST + timedelta(days=20)})
    state = old.fired(report)  # RECENT reaches 30 + 7 days back
    assert set(state.resets) == {("T1", "pm25"), ("T2", "pm25")}


def test_what_retrains_is_named_before_what_only_alerts():
    step_day = FIRST + timedelta(days=45)
    stats = small_network_stats(step=("T2", step_day, 3.0), seed=5, fault=Fault("step", "T3", "wind_speed", step_day, factor=8.0))
    report = check_drift(stats, step_day + timedelta(days=2), RetrainingConfig(drift=DriftSettings(rule="sequential")).drift_in_force())
    assert list(report.flagged["action"]) == ["retrain", "alert"]
    assert report.triggers()[0].reason.split(": ", 1)[1].startswith("critical pm25 at T2")


def diurnal_pm10_stats(seed: int, fault: Fault | None = None, days: int = 56, stations: int = 8,
                       **sketch_options) -> pd.DataFrame:
    """Sketches of a network whose PM10 swings thirtyfold between clean nights and hazy
    afternoons, every station around one shared hourly course with its own multiplicative
    noise."""
    rng = np.random.default_rng(seed)
    hours, parts = np.arange(24), []
    for i in range(days):
        day = FIRST + timedelta(days=i)
        course = 3.0 + rng.normal(0, 0.5) + 1.6 * np.sin((hours - 3) / 24 * 2 * np.pi) + np.cumsum(rng.normal(0, 0.35, 24))
        stamps = pd.date_range(pd.Timestamp(day), periods=24, freq="h")
        parts += [pd.DataFrame({"timestamp": stamps, "station": f"T{s}",
                                "pm10": np.exp(course + 0.2 * s / stations + rng.normal(0, 0.35, 24))})
                  for s in range(stations)]
    return sketch_hours(pd.concat(parts, ignore_index=True), fault, **sketch_options)


def test_a_noisier_sensor_stands_out_at_its_clean_hours_too():
    """The hours are compared with the peers' on a fine log scale (floor × RESIDUAL_FLOOR_SHARE),
    so the clean night hours count as much as the hazy afternoons: a PM10 sensor whose hours
    scatter × √2 is found by its third day on every seed; on the mean shift's scale (log(x + 20),
    the scale before) the hazy hours drown it out and it is found that soon on at most half."""
    start = FIRST + timedelta(days=48)
    shipped = RetrainingConfig().drift_in_force()

    def first_found(stats) -> int | None:
        for d in range(7):
            if bool(row(check_drift(stats, start + timedelta(days=d), shipped), "T3", "pm10")["spread_drift"]):
                return d
        return None

    fault = Fault("spread", "T3", "pm10", start, factor=float(np.sqrt(2.0)))
    seeds = range(6)
    found = [first_found(diurnal_pm10_stats(seed, fault)) for seed in seeds]
    assert all(d is not None and d <= 2 for d in found), found
    assert not any(first_found(diurnal_pm10_stats(seed)) is not None for seed in seeds[:2])  # clean: nothing
    coarse = [first_found(diurnal_pm10_stats(seed, fault, residual_floor_share=1.0)) for seed in seeds]
    assert sum(d is not None and d <= 2 for d in coarse) <= len(seeds) // 2, coarse  # 2 of 6 when written


def dusty_network_stats(seed: int, fault: Fault | None = None, days: int = 60, stations: int = 7) -> pd.DataFrame:
    """Sketches of a network whose stations' PM2.5 and PM10 move together against their peers
    (a shared local factor each day: dust, a plume), with ``fault`` injected."""

    def hourly(rng, common, day, name):
        local = rng.normal(0, 0.15)
        return {"pm25": np.exp(3.5 + common + local + rng.normal(0, 0.25, 24)),
                "pm10": np.exp(4.2 + common + local + rng.normal(0, 0.25, 24))}

    return network_stats(hourly, days, stations, seed, fault)


def test_the_target_is_charted_against_the_stations_own_control_feature():
    """PM2.5 less β × PM10 at the same station is steadier than PM2.5 against its peers alone:
    a recalibrated PM2.5 analyser is found sooner; a PM10 one is not blamed on PM2.5."""
    start = FIRST + timedelta(days=50)
    shipped = RetrainingConfig().drift_in_force()  # watches the target, pm25

    def first_found(stats, feature: str) -> int | None:
        for d in range(7):
            found = row(check_drift(stats, start + timedelta(days=d), shipped), "T2", feature)
            if bool(found["level_drift"]):
                return d
        return None

    seeds = range(5)
    report = check_drift(dusty_network_stats(0), start, shipped)
    assert row(report, "T2", "pm25")["control_feature"] == "pm10" and row(report, "T2", "pm10")["control_feature"] == ""
    step = [first_found(dusty_network_stats(seed, Fault("step", "T2", "pm25", start, factor=1.3)), "pm25") for seed in seeds]
    other = [first_found(dusty_network_stats(seed, Fault("step", "T2", "pm10", start, factor=1.3)), "pm25") for seed in seeds]
    clean = [first_found(dusty_network_stats(seed), "pm25") for seed in seeds]
    assert all(d is not None and d <= 2 for d in step), step  # days 2, 1, 1, 1, 1 when written
    assert other == [None] * len(seeds), other  # a PM10 step is not PM2.5's
    assert clean == [None] * len(seeds)
    shipped = shipped.model_copy(update={"control_min_r2": 2.0})  # no control: against the peers alone
    alone = [first_found(dusty_network_stats(seed, Fault("step", "T2", "pm25", start, factor=1.3)), "pm25") for seed in seeds]
    assert row(check_drift(dusty_network_stats(0), start, shipped), "T2", "pm25")["control_feature"] == ""
    assert sum(d is not None and d <= 2 for d in alone) <= 2, alone  # days 3, —, 6, 1, 3


def test_a_gain_is_a_level_change_not_a_spread_one_and_old_sketches_still_get_a_spread_chart():
    day = FIRST + timedelta(days=50)
    stepped = small_network_stats(seed=6, step=("T2", day - timedelta(days=3), 2.0))
    report = check_drift(stepped, day, SEQUENTIAL)
    assert row(report, "T2", "pm25")[["level_drift", "spread_drift"]].tolist() == [True, False]
    # the spread chart reads the hours' scatter around the peers, which a gain leaves alone on the
    # log scale; sketches without it (kept before) fall back to the within-day variance, which a
    # gain × 2 moves by log 4, so there the step is a spread finding too
    legacy = stepped.drop(columns=["residual_count", "residual_sum", "residual_sum_sq"])
    before = check_drift(legacy, day, SEQUENTIAL)
    assert row(before, "T2", "pm25")[["level_drift", "spread_drift"]].tolist() == [True, True]
    # and a noisier sensor is found by either
    noisy = small_network_stats(seed=6, fault=Fault("spread", "T4", "pm25", day - timedelta(days=3), factor=2.0))
    for stats in (noisy, noisy.drop(columns=["residual_count", "residual_sum", "residual_sum_sq"])):
        assert bool(row(check_drift(stats, day, SEQUENTIAL), "T4", "pm25")["spread_drift"])
