"""The trigger benchmark's machinery on a small synthetic network (the real run is ``make bench-triggers``)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from aqi_assets.core.configuration.config import DriftSettings
from aqi_assets.core.monitoring.drift import DriftState
from aqi_assets.core.data.faults import Fault
from bench.bench_triggers import Sketches, clean_summary, days_between, replay, sketch_station_days

FIRST = date(2024, 1, 1)


def hourly(days: int = 60, stations: int = 6, seed: int = 1) -> pd.DataFrame:
    """A network measuring only no2 and temperature."""
    rng = np.random.default_rng(seed)
    stamps = pd.date_range(pd.Timestamp(FIRST), periods=24 * days, freq="h")
    common = np.repeat(rng.normal(0, 0.3, days), 24)
    parts = [pd.DataFrame({"timestamp": stamps, "station": f"N{s}",
                           "no2": np.exp(3.4 + common + rng.normal(0, 0.2, len(stamps))),
                           "temperature": 10 + 5 * common + rng.normal(0, 1.0, len(stamps))}) for s in range(stations)]
    return pd.concat(parts, ignore_index=True)


@pytest.mark.parametrize("stations", [3, 6])
def test_replay_and_fault_injection_on_another_network(stations):
    frame = hourly(stations=stations)
    stats = sketch_station_days(frame)
    sketches = Sketches({d: p.reset_index(drop=True) for d, p in stats.groupby(stats["date"].dt.date)})
    settings = DriftSettings(rule="sequential", reference_days=30, retrain_features=["no2"])
    days = days_between(FIRST + timedelta(days=40), FIRST + timedelta(days=59))
    checks, states = replay(sketches, days, settings, DriftState())
    summary = clean_summary(checks)
    assert summary["triggers"] == 0 and summary["smallest_reference_days"] == 30
    fault = Fault("step", "N1", "no2", FIRST + timedelta(days=50), factor=2.0)
    faulty = sketches.with_fault(frame, fault, days_between(fault.start, fault.start + timedelta(days=6)))
    assert set(faulty.overrides) == set(days_between(fault.start, fault.start + timedelta(days=6)))
    found, _ = replay(faulty, days_between(fault.start, fault.start + timedelta(days=6)), settings, states[9])
    # N1 doubling moves the network median (on three stations, to the higher of its two peers),
    # so a peer may be flagged too; the faulty pair is named first on the day it is found, within two days
    first = next(c for c in found if ("N1", "no2") in c.flagged)
    assert first.flagged[0] == ("N1", "no2") and (first.day - fault.start).days <= 2
    assert any(c.triggered for c in found)


def test_deployed_goal_compares_with_the_best_fixed_schedule_and_its_retrains():
    from bench.bench_trigger_policies import deployed_goal
    from bench.bench_triggers import markdown

    days = pd.date_range("2024-01-01", periods=56, freq="D")

    def scores(rmse: float) -> pd.DataFrame:
        return pd.DataFrame({"date": days, "n": 100, "rmse": rmse})

    summaries = {"never": {"rmse": 11.0, "retrains": 0}, "fixed_7": {"rmse": 10.2, "retrains": 40},
                 "fixed_14": {"rmse": 10.0, "retrains": 20}, "deployed": {"rmse": 9.9, "retrains": 6}}
    tables = {name: scores(s["rmse"]) for name, s in summaries.items()}
    goal = deployed_goal(summaries, tables)
    assert (goal["best_fixed"], goal["best_fixed_retrains"], goal["retrain_share"]) == ("fixed_14", 20, 0.3)
    assert goal["met"] and goal["rmse_no_worse"] and goal["retrains_within_share"]
    assert goal["rmse_change"] == [-0.01, -0.01, -0.01]
    summaries["deployed"] = {"rmse": 9.9, "retrains": 7}  # 35 % of the schedule's retrains
    missed = deployed_goal(summaries, tables)
    assert not missed["met"] and missed["rmse_no_worse"] and not missed["retrains_within_share"]
    result = {"first": "2024-01-01", "last": "2024-02-25", "drift_settings": {"rule": "sequential"}, "rule_note": "x",
              "clean": {"days": 56, "per_year": {"drift": 1.0, "performance": 2.0, "schedule": 3.0},
                        "drift": {"triggers": 1, "mean_pairs_flagged_per_day": 0.1, "alert_only_days_per_year": 2.0,
                                  "drivers": {}, "reference_pair_tests": {}, "smallest_reference_days": 15}},
              "faults": {}, "policies": summaries, "seconds": 1.0,
              "policy_run": {"goal": missed, "start": "2024-01-01", "end": "2024-02-25", "fits": 9,
                             "fit_cpu_seconds": 40.0, "wall_seconds": 90.0, "cpus": 2, "load_avg_before": 1.0,
                             "load_avg_after": 1.5}}
    text = markdown(result)
    assert "**not met**" in text and "best fixed schedule fixed_14: RMSE 10.000, 20 retrains" in text
    assert "retrains 35% of the schedule's (above 30 %)" in text
    assert "9 models (40 CPU s of fitting), 1.5 min wall" in text


def test_the_trigger_benchmark_replays_any_source_with_what_it_measures(tmp_path, monkeypatch):
    import json

    import bench.bench_triggers as bench_triggers

    monkeypatch.setattr(bench_triggers, "RESULTS", tmp_path)
    for name in ("FIRST", "LAST"):  # main() sets the replay's days; put them back afterwards
        monkeypatch.setattr(bench_triggers, name, getattr(bench_triggers, name))
    monkeypatch.setattr(bench_triggers.schema, "RESIDUAL_FLOOR_SHARE", bench_triggers.schema.RESIDUAL_FLOOR_SHARE)
    source = "simulated:stations=4,start=2024-01-01,end=2024-04-30,columns=no2+o3+temperature"
    bench_triggers.main(["--source", source, "--name", "small", "--target", "no2"])
    result = json.loads((tmp_path / "triggers_small.json").read_text())
    assert (result["stations"], result["source"], result["first"]) == (4, source, "2024-02-15")
    faults = result["faults"]
    # no PM2.5 or PM10 here: the step goes to the target, the spread to another pollutant
    assert faults["pm25_step"]["fault"]["column"] == "no2" and faults["pm25_step"]["cases"] == 20
    assert {r["column"] for r in faults["pm25_step"]["records"]} == {"no2"}
    assert faults["pm10_spread"]["fault"]["column"] == "o3"
    assert faults["wind_speed_step"] == {**faults["wind_speed_step"], "cases": 0,
                                         "skipped": "the network does not measure wind_speed"}
    assert faults["stuck"]["detected"] >= 16  # a flat line is certain, whatever the network
    assert result["clean"]["drift"]["triggers"] == 0
    text = (tmp_path / "triggers_small.md").read_text()
    assert "pm25_step (on no2; pm25 not measured)" in text and "skipped: the network does not measure wind_speed" in text
    assert f'--source {source} --name small --target no2' in text


def test_the_policy_backtest_replays_another_network_with_its_own_settings(tmp_path, monkeypatch):
    import json

    import bench.bench_triggers as bench_triggers

    monkeypatch.setattr(bench_triggers, "RESULTS", tmp_path)
    for name in ("FIRST", "LAST", "CASES", "KINDS"):  # main() sets them; put them back afterwards
        monkeypatch.setattr(bench_triggers, name, getattr(bench_triggers, name))
    monkeypatch.setattr(bench_triggers.schema, "RESIDUAL_FLOOR_SHARE", bench_triggers.schema.RESIDUAL_FLOOR_SHARE)
    source = "simulated:seed=3,stations=5,start=2024-01-01,end=2024-04-30"
    seed_schedule = ["--set", "schedule.days.xgboost=7", "--set", "schedule.min_days=3", "--set", "schedule.max_days=30"]
    bench_triggers.main(["--source", source, "--name", "small", "--stations", "S0001,S0002,S0003,S0005",
                         "--policies", "--cases", "1", "--kinds", "stuck",
                         "--set", "training.window_days=21", "--set", "training.validation_days=4",
                         "--set", "training.holdout_days=4", "--set", "training.preset=fast", *seed_schedule])
    (written,) = tmp_path.glob("triggers_small_4stations_1cases_stuck_*_xgboost7_min_days3_max_days30.json")
    stem = written.stem
    result = json.loads(written.read_text())
    run, policies = result["policy_run"], result["policies"]
    assert result["stations"] == 4 and run["stations"] == ["S0001", "S0002", "S0003", "S0005"]
    # every day after the first model's 21-day window, under the settings given
    assert (run["start"], run["end"]) == ("2024-01-22", "2024-04-30")
    assert set(policies) >= {"never", "fixed_14", "schedule", "deployed"} and policies["never"]["retrains"] == 0
    # the seed's 7-day schedule, adapted within 3..30 days, retrains at least every 30 days of the 100
    assert policies["schedule"]["retrains"] >= 3
    assert run["goal"]["deployed_retrains"] == policies["deployed"]["retrains"]
    text = (tmp_path / f"{stem}.md").read_text()
    assert "## Policies" in text and "Policy backtest 2024-01-22..2024-04-30" in text
    assert "--policies --stations S0001,S0002,S0003,S0005 --source" in text and "--set schedule.min_days=3" in text
    with pytest.raises(SystemExit, match="S0009"):  # a station the network does not have is named
        bench_triggers.main(["--source", source, "--stations", "S0001,S0009", "--policies"])


def test_more_cases_of_some_kinds_are_written_beside_the_default_run(tmp_path, monkeypatch):
    import json

    import bench.bench_triggers as bench_triggers

    monkeypatch.setattr(bench_triggers, "RESULTS", tmp_path)
    for name in ("FIRST", "LAST", "CASES", "KINDS", "PEER_MIN_OTHERS", "RESIDUAL_FLOOR_SHARE"):  # main() sets them
        monkeypatch.setattr(bench_triggers, name, getattr(bench_triggers, name))  # put them back afterwards
    source = "simulated:stations=4,start=2024-01-01,end=2024-03-15,columns=no2+temperature"
    bench_triggers.main(["--source", source, "--name", "small", "--target", "no2", "--cases", "5",
                         "--kinds", "stuck,pm25_step", "--set", "drift.cusum_h=5", "--peer-min-others", "2",
                         "--residual-floor-share", "0.05"])
    stem = "triggers_small_5cases_stuck_pm25_step_peers2_share0.05_cusum_h5"
    result = json.loads((tmp_path / f"{stem}.json").read_text())
    assert list(result["faults"]) == ["pm25_step", "stuck"] and result["cases_per_kind"] == 5
    assert result["faults"]["pm25_step"]["cases"] == 5
    assert result["peer_min_others"] == 2 and result["residual_floor_share"] == 0.05 and result["drift_settings"]["cusum_h"] == 5.0 and result["drift_settings"]["retrain_features"] == ["no2"]
    text = (tmp_path / f"{stem}.md").read_text()
    assert "5 seeded (station, day) cases per kind" in text
    assert "--cases 5 --kinds stuck,pm25_step --set drift.cusum_h=5 --peer-min-others 2 --residual-floor-share 0.05" in text
    assert not (tmp_path / "triggers_small.json").exists()  # the default run's files stay as they were
    for wrong in (["--kinds", "pm25_stepp"], ["--set", "drift.cusum_hh=5"], ["--set", "drift.cusum_h"],
                  ["--set", "drift.cusum_h=-1"], ["--peer-min-others", "0"], ["--residual-floor-share", "0"]):
        with pytest.raises(SystemExit):
            bench_triggers.main(["--source", source, *wrong])


def test_a_case_with_nothing_to_inject_is_set_aside_and_named(monkeypatch):
    import bench.bench_triggers as bench_triggers

    frame = hourly(days=60, stations=4)
    frame.loc[frame["station"] == "N0", "no2"] = np.nan  # N0's analyser never reads: nothing to get stuck at
    stats = sketch_station_days(frame)
    sketches = Sketches({d: p.reset_index(drop=True) for d, p in stats.groupby(stats["date"].dt.date)})
    settings = DriftSettings(rule="sequential", reference_days=30, retrain_features=["no2"])
    monkeypatch.setattr(bench_triggers, "FIRST", FIRST + timedelta(days=40))
    monkeypatch.setattr(bench_triggers, "LAST", FIRST + timedelta(days=59))
    checks, states = replay(sketches, days_between(FIRST + timedelta(days=40), FIRST + timedelta(days=59)),
                            settings, DriftState())
    result = bench_triggers.fault_cases(frame, sketches, settings, checks, states, "stuck", seed=1, target="no2")
    skipped = result["not_injected"]
    assert skipped and {case["station"] for case in skipped} == {"N0"}
    assert all("has no no2 reading to get stuck at" in case["reason"] for case in skipped)
    assert result["cases"] + len(skipped) == bench_triggers.CASES
    assert {r["station"] for r in result["records"]} <= {"N1", "N2", "N3"} and result["detected"] >= result["cases"] - 2
