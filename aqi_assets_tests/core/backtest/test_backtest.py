"""The backtest: policies by name, the day-by-day replay, its scoring, its outputs and its CLI."""

from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from aqi_assets.cli.main import main
from aqi_assets.core.backtest.replay import (
    BacktestSettings,
    daily_scores,
    pooled_metrics,
    results_table,
    rmse_change_interval,
    run_backtest,
    sort_frame,
    training_frames,
    write_outputs,
)
from aqi_assets.core.backtest.policies import SEED_RAW_OVERRIDES, policies_from_names, policy_from_name
from aqi_assets.core.configuration.config import PerformanceSettings, RetrainingConfig, TrainingSettings
from aqi_assets.core.training.forecasting import evaluate, make_forecaster
from aqi_assets.core.data.schema import TIMESTAMP
from aqi_assets.core.data.sources.simulated import SimulatedSource
from aqi_assets.core.data.station_graph import build_station_graph
from aqi_assets.core.monitoring.triggers import PERFORMANCE_COLUMNS

START, END = date(2024, 2, 1), date(2024, 3, 15)
INJECTED = date(2024, 3, 1)
STATIONS = ("S0001", "S0002", "S0003", "S0004")
#: Every station's pollutant readings ×2 + 16 from INJECTED on: the model's raw error jumps.
RECALIBRATION = "+".join(f"sensor_recalibration@{INJECTED}@{s}@2.0" for s in STATIONS)
TRAINING = TrainingSettings(window_days=28, validation_days=3, holdout_days=3, preset="fast")
#: The fast preset made smaller still: one booster of 20 shallow trees on one thread.
TINY_MODEL = {"nthread": 1, "log_blend": 0.0, "n_estimators": 20, "max_bin": 32}
SETTINGS = BacktestSettings(start=START, end=END, training=TRAINING, hyperparams=TINY_MODEL)


def simulated_frame(scenario: str = "") -> pd.DataFrame:
    spec = "seed=5,stations=4,start=2024-01-01,end=2024-03-31" + (f",scenario={scenario}" if scenario else "")
    source = SimulatedSource.from_spec(spec)
    return sort_frame(source.read_range(SETTINGS.data_start, END))


@pytest.fixture(scope="module")
def city():
    source = SimulatedSource(seed=5, n_stations=4, start=date(2024, 1, 1), end=date(2024, 3, 31))
    return simulated_frame(), build_station_graph(source.stations())


@pytest.fixture(scope="module")
def replay(city):
    frame, graph = city
    policies = policies_from_names("never,fixed_7,fixed_14,seed_raw")
    return run_backtest(frame, policies, SETTINGS, graph=graph)


def test_policy_names_map_to_rules():
    assert policy_from_name("never").kind == "never"
    fixed = policy_from_name("fixed_30")
    assert (fixed.kind, fixed.interval_days, fixed.performance) == ("fixed", 30, None)
    assert policy_from_name("default").performance == RetrainingConfig().performance
    seed = policy_from_name("seed_raw").performance
    assert seed == PerformanceSettings(**SEED_RAW_OVERRIDES)
    assert (seed.rule, seed.rmse_increase, seed.accuracy_drop) == ("raw", 0.15, 0.10)
    assert (seed.critical_rmse_increase, seed.critical_accuracy_drop) == (0.30, 0.20)
    tuned = policy_from_name("default:rmse_increase=0.1+cooldown_days=7+every=60")
    assert (tuned.performance.rmse_increase, tuned.performance.cooldown_days, tuned.interval_days) == (0.1, 7, 60)
    assert policy_from_name("default+drift").drift == RetrainingConfig().drift_in_force()
    with pytest.raises(ValueError, match="unknown policy 'weekly'"):
        policy_from_name("weekly")
    with pytest.raises(ValueError, match="unknown performance setting"):
        policy_from_name("default:threshold=0.2")
    with pytest.raises(ValueError, match="named twice"):
        policies_from_names("never,fixed_7,never")


def test_training_window_ends_on_the_retrain_day(city):
    frame, _ = city
    day = date(2024, 2, 20)
    train, valid = training_frames(frame, SETTINGS, day)
    assert valid is None
    assert train[TIMESTAMP].min() == pd.Timestamp(day - timedelta(days=27))
    assert train[TIMESTAMP].max() == pd.Timestamp(day) + pd.Timedelta(hours=23)
    split = BacktestSettings(start=START, end=END, training=TRAINING, fit_on="split")
    train, valid = training_frames(frame, split, day)
    # Live-candidate split: 22 training days, 3 validation days, the last 3 (holdout) unused.
    assert train[TIMESTAMP].max() == pd.Timestamp(day - timedelta(days=6)) + pd.Timedelta(hours=23)
    assert (valid[TIMESTAMP].min(), valid[TIMESTAMP].max()) == (
        pd.Timestamp(day - timedelta(days=5)), pd.Timestamp(day - timedelta(days=3)) + pd.Timedelta(hours=23))


def fitted_initial_model(city):
    frame, graph = city
    train, _ = training_frames(frame, SETTINGS, START - timedelta(days=1))
    model = make_forecaster("xgboost", SETTINGS.spec, preset="fast", **TINY_MODEL)
    model.fit(train, None, graph)
    return model


def test_vectorised_daily_scores_equal_evaluate_day_by_day(city):
    frame, _ = city
    model = fitted_initial_model(city)
    first, last = START, START + timedelta(days=5)
    run = frame[frame[TIMESTAMP] >= pd.Timestamp(first) - pd.Timedelta(hours=100)]
    table = daily_scores(model, run, first, last)
    assert list(table.columns) == list(PERFORMANCE_COLUMNS) and len(table) == 6
    assert set(table["model"]) == {"xgboost"}
    for row in table.itertuples(index=False):
        day = row.date.date()
        same_frame = evaluate(model, run, day, day)
        whole_frame = evaluate(model, frame, day, day)
        assert row.n == same_frame["n"] == whole_frame["n"] > 80
        for column in PERFORMANCE_COLUMNS[2:]:
            assert getattr(row, column) == pytest.approx(same_frame[column], rel=1e-12), (day, column)
        # From a frame starting weeks earlier, rolling features differ in the last bits, which
        # can flip a tree split for a rare forecast: equal to well under 1 %.
        assert row.rmse == pytest.approx(whole_frame["rmse"], rel=5e-3)


def test_never_keeps_the_initial_model_and_pools_every_forecast(city, replay):
    frame, _ = city
    never = replay.results["never"]
    assert never.retrain_count == 0 and never.train_cpu_seconds == 0.0
    assert len(never.scores) == (END - START).days + 1 == 44
    assert set(never.scores["trained_through"]) == {pd.Timestamp(START - timedelta(days=1))}
    # Pooling the daily rows gives the metrics of all the replay's forecasts at once.
    model = fitted_initial_model(city)  # the same deterministic fit on the same window
    whole = evaluate(model, frame, START, END)
    pooled = pooled_metrics(daily_scores(model, frame, START, END))
    assert pooled["n"] == whole["n"] == never.metrics["n"]
    for name in ("rmse", "mae", "within_20", "persistence_rmse"):
        assert pooled[name] == pytest.approx(whole[name], rel=1e-12)
    assert never.rmse == pytest.approx(whole["rmse"], rel=5e-3)
    assert never.metrics["persistence_rmse"] == pytest.approx(whole["persistence_rmse"], rel=1e-12)
    assert replay.initial_cpu_seconds > 0


def test_fixed_schedules_retrain_on_their_days_and_share_fits(replay):
    weekly, fortnightly = replay.results["fixed_7"], replay.results["fixed_14"]
    expected = [START + timedelta(days=7 * k - 1) for k in range(1, 7)]  # Feb 7, 14, ... Mar 13
    assert [r.decided_on for r in weekly.retrains] == expected
    assert [r.decided_on for r in fortnightly.retrains] == expected[1::2]
    assert all(r.trigger_types == ("schedule",) for r in weekly.retrains)
    # A retrain decided on d (window ending d) serves from d + 1 to the next retrain.
    scores = weekly.scores.set_index("date")
    for retrain in weekly.retrains:
        assert scores.loc[pd.Timestamp(retrain.serves_from), "trained_through"] == pd.Timestamp(retrain.decided_on)
        assert scores.loc[pd.Timestamp(retrain.decided_on), "trained_through"] < pd.Timestamp(retrain.decided_on)
    # Fortnightly days are weekly days: fitted once, counted for both policies.
    assert replay.fits == 1 + len(expected)
    cpu = {r.decided_on: r.cpu_seconds for r in weekly.retrains}
    assert fortnightly.train_cpu_seconds == pytest.approx(sum(cpu[r.decided_on] for r in fortnightly.retrains))
    assert weekly.train_cpu_seconds > fortnightly.train_cpu_seconds > 0
    # Before the first retrain every policy serves the same model, so the scores agree.
    first_week = weekly.scores["date"] <= pd.Timestamp(expected[0])
    assert np.array_equal(weekly.scores.loc[first_week, "rmse"], replay.results["never"].scores.loc[first_week, "rmse"])


def test_triggered_policy_retrains_after_an_injected_degradation(city, replay):
    _, graph = city
    assert replay.results["seed_raw"].retrain_count == 0  # no trigger on the undisturbed city
    degraded = run_backtest(simulated_frame(RECALIBRATION), policies_from_names("never,seed_raw"), SETTINGS,
                            graph=graph)
    (first, *_rest) = degraded.results["seed_raw"].retrains
    assert INJECTED + timedelta(days=1) <= first.decided_on <= INJECTED + timedelta(days=7)
    assert first.trigger_types == ("performance",) and first.severity in ("high", "critical")
    assert first.triggers[0].evidence["error_increase"] > 0.15
    # Retraining on the recalibrated readings helps.
    after = lambda r: r.scores[r.scores["date"] > pd.Timestamp(first.decided_on)]  # noqa: E731
    assert pooled_metrics(after(degraded.results["seed_raw"]))["rmse"] < pooled_metrics(
        after(degraded.results["never"]))["rmse"]


def test_rmse_change_interval_pairs_days_and_brackets_the_change(replay):
    never, weekly = replay.results["never"].scores, replay.results["fixed_7"].scores
    assert rmse_change_interval(never, never) == (0.0, 0.0, 0.0)
    worse = never.assign(rmse=never["rmse"] * 1.1)
    assert rmse_change_interval(worse, never) == pytest.approx((0.1, 0.1, 0.1), abs=1e-12)
    change, low, high = rmse_change_interval(weekly, never, block_days=7, draws=500)
    assert change == pytest.approx(replay.results["fixed_7"].rmse / replay.results["never"].rmse - 1, abs=1e-12)
    assert low < change < high and high - low < 0.2


def test_writers_produce_table_json_and_png(replay, tmp_path):
    paths = write_outputs(replay, tmp_path)
    record = json.loads(paths["json"].read_text())
    assert list(record["policies"]) == ["never", "fixed_7", "fixed_14", "seed_raw"]
    weekly = record["policies"]["fixed_7"]
    assert {"rmse", "retrains", "train_cpu_seconds"} <= set(weekly)
    assert weekly["retrains"] == len(weekly["retrain_days"]) == 6
    assert weekly["rmse"] == pytest.approx(replay.results["fixed_7"].rmse, abs=1e-4)
    assert weekly["retrain_days"][0]["serves_from"] == "2024-02-08"
    assert record["settings"]["window_days"] == 28 and record["fits"] == 7
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and paths["plot"].stat().st_size > 5000
    table = results_table(replay).splitlines()
    assert len(table) == 2 + 4 and table[2].startswith("| never | ") and "+0.00%" in table[2]
    daily = pd.read_csv(paths["daily"])
    assert len(daily) == 4 * 44 and set(daily["policy"]) == {"never", "fixed_7", "fixed_14", "seed_raw"}


def test_cli_runs_a_tiny_replay_end_to_end(tmp_path, capsys):
    out = tmp_path / "bt"
    code = main(["backtest", "--source", "simulated:seed=3,stations=3,start=2024-01-01,end=2024-02-29",
                 "--start", "2024-02-01", "--end", "2024-02-20", "--window-days", "21", "--preset", "fast",
                 "--hyper", "nthread=1", "--hyper", "n_estimators=20", "--policies", "never,fixed_7", "--out", str(out), "--quiet",
                 "--config", "defaults"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "| never |" in printed and "| fixed_7 |" in printed and f"json: {out / 'backtest.json'}" in printed
    record = json.loads((out / "backtest.json").read_text())
    assert record["policies"]["fixed_7"]["retrains"] == 2  # decided Feb 7 and Feb 14
    assert record["settings"]["days"] == 20 and record["settings"]["hyperparams"]["nthread"] == 1
    assert (out / "backtest.png").stat().st_size > 0


def test_cli_rejects_an_unknown_policy(capsys):
    code = main(["backtest", "--source", "simulated:seed=3,stations=3,start=2024-01-01,end=2024-02-29",
                 "--policies", "never,sometimes", "--quiet"])
    assert code == 2
    assert "unknown policy 'sometimes'" in capsys.readouterr().err


NO2_NETWORK = "simulated:seed=3,stations=3,start=2024-01-01,end=2024-02-29,columns=no2+temperature+wind_speed"


def test_cli_replays_another_target_and_prints_persistence_on_the_same_rows(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AQI_LAKE_DIR", str(tmp_path / "empty-lake"))
    out = tmp_path / "bt"
    code = main(["backtest", "--source", NO2_NETWORK, "--target", "no2", "--start", "2024-02-01",
                 "--end", "2024-02-10", "--window-days", "21", "--preset", "fast", "--hyper", "n_estimators=20",
                 "--policies", "never,fixed_7", "--out", str(out), "--quiet"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "Settings: the built-in defaults (no retraining_config recorded in" in printed
    assert "target no2, horizon 1 h, window 21 days, fast preset" in printed
    assert "| persistence RMSE |" in printed.splitlines()[2]
    record = json.loads((out / "backtest.json").read_text())
    assert record["settings"]["target"] == "no2"
    never = record["policies"]["never"]
    assert 0 < never["rmse"] < never["persistence_rmse"]


def test_cli_reads_the_instance_config_and_says_so(tmp_path, capsys, monkeypatch):
    from aqi_assets.core.configuration.store import next_record, save_record
    from aqi_assets.core.data.lake import Lake

    lake = Lake(tmp_path / "lake")
    save_record(lake, next_record(lake, {"training.target": "no2", "training.window_days": "21",
                                         "training.validation_days": "3", "training.holdout_days": "3",
                                         "training.preset": "fast"}))
    monkeypatch.setenv("AQI_LAKE_DIR", str(lake.root))
    code = main(["backtest", "--source", NO2_NETWORK, "--start", "2024-02-01", "--end", "2024-02-05",
                 "--hyper", "n_estimators=20", "--policies", "never", "--out", str(tmp_path / "bt"), "--quiet"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert f"retraining_config v1 recorded in {lake.root}" in printed and "target no2" in printed
    # the recorded target is not measured by another network: the error names the column
    code = main(["backtest", "--source", "simulated:seed=3,stations=3,start=2024-01-01,end=2024-02-29,columns=pm25",
                 "--start", "2024-02-01", "--end", "2024-02-05", "--policies", "never", "--quiet",
                 "--out", str(tmp_path / "bt2")])
    assert code == 2
    assert "target 'no2' is not measured by this network (it measures pm25)" in capsys.readouterr().err


def test_cli_names_an_empty_target_column(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AQI_LAKE_DIR", str(tmp_path / "empty-lake"))
    frame = SimulatedSource.from_spec(NO2_NETWORK.split(":", 1)[1]).read_range(date(2024, 1, 1), date(2024, 2, 29))
    frame["o3"] = np.nan
    frame.to_csv(tmp_path / "obs.csv", index=False, date_format="%Y-%m-%d %H:%M")
    (tmp_path / "obs2.csv").write_text("timestamp,station,o3\n2024-01-01 00:00,S0001,\n")
    code = main(["backtest", "--source", f"csv:{tmp_path}", "--target", "o3", "--start", "2024-02-01",
                 "--end", "2024-02-05", "--window-days", "21", "--policies", "never", "--quiet",
                 "--out", str(tmp_path / "bt")])
    assert code == 2
    assert "the target column 'o3' holds no value anywhere in this network's data" in capsys.readouterr().err
