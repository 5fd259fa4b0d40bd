"""The backtest's shared features: one ``FeatureGrid`` of the replay frame gives the same windows,
fits and daily scores as rebuilding the features for every fit and scoring run; warm retrains."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from aqi_assets.core.backtest.policies import policies_from_names, policy_from_name
from aqi_assets.core.backtest.replay import (
    BacktestSettings,
    FitPool,
    ModelStore,
    daily_scores,
    run_backtest,
    scheduled_days,
    sort_frame,
    training_frames,
)
from aqi_assets.core.configuration.config import TrainingSettings
from aqi_assets.core.data.schema import TIMESTAMP
from aqi_assets.core.data.sources.simulated import SimulatedSource
from aqi_assets.core.data.station_graph import build_station_graph
from aqi_assets.core.training.forecasting import make_forecaster
from aqi_assets.core.training.forecasting.panel import Panel
from aqi_assets.core.training.forecasting.tabular_features import tabular_features

START, END = date(2024, 2, 1), date(2024, 3, 10)
TRAINING = TrainingSettings(window_days=21, validation_days=3, holdout_days=3, preset="fast")
TINY_MODEL = {"nthread": 1, "log_blend": 0.0, "n_estimators": 20, "max_bin": 32, "warm_start_rounds": 5}
SETTINGS = BacktestSettings(start=START, end=END, training=TRAINING, hyperparams=TINY_MODEL)


@pytest.fixture(scope="module")
def city():
    source = SimulatedSource(seed=7, n_stations=5, start=date(2024, 1, 1), end=date(2024, 3, 31))
    return sort_frame(source.read_range(SETTINGS.data_start, END)), build_station_graph(source.stations())


def new_model():
    return make_forecaster("xgboost", SETTINGS.spec, preset="fast", **TINY_MODEL)


def test_a_window_of_the_grid_is_the_windows_own_panel_and_features(city):
    frame, graph = city
    grid = new_model().feature_grid(frame, graph)
    lo, hi = pd.Timestamp("2024-01-20"), pd.Timestamp("2024-02-05")
    window = grid.window(lo, hi)
    rows = frame[(frame[TIMESTAMP] >= lo) & (frame[TIMESTAMP] < hi)]
    own = Panel.from_frame(rows)
    assert window.panel.times.equals(own.times) and window.panel.stations == own.stations
    assert np.array_equal(window.panel.present, own.present) and window.panel.available == own.available
    expected = tabular_features(own, SETTINGS.spec, graph, n_nearest=int(new_model().hyperparams["n_nearest"]))
    assert list(window.features) == list(expected) and len(expected) > 60
    for name, values in expected.items():  # to the last bit, the first LOOKBACK_HOURS included
        np.testing.assert_array_equal(window.features[name], values.astype(np.float32), err_msg=name)
    # the whole frame's rows differ there: lags reach before the window
    assert not np.allclose(grid.features["y_lag24"][grid.panel.times.get_loc(lo)], expected["y_lag24"][0],
                           equal_nan=True)
    # windows the grid cannot give as their own: not on the hour, a station without rows
    assert grid.window(lo + pd.Timedelta(minutes=30), hi) is None
    assert grid.window(hi, hi) is None


def test_a_fit_from_the_grid_is_the_fit_from_the_frame(city):
    frame, graph = city
    split = BacktestSettings(start=START, end=END, training=TRAINING, hyperparams=TINY_MODEL, fit_on="split")
    train, valid = training_frames(frame, split, START - timedelta(days=1))  # early stopping on valid
    slow, fast = new_model(), new_model()
    slow.fit(train, valid, graph)
    grid = fast.feature_grid(frame, graph)
    # the grid gives this window (no fallback to the frame)
    assert grid.window(train[TIMESTAMP].min(), valid[TIMESTAMP].max() + pd.Timedelta(hours=1)) is not None
    fast.fit_from_grid(grid, train, valid)
    assert fast.training_report == {**slow.training_report, "seconds": fast.training_report["seconds"]}
    assert slow.training_report["train_rows"] > 1500 and slow.training_report["valid_rows"] > 300
    assert fast.feature_names == slow.feature_names
    history = frame[(frame[TIMESTAMP] >= pd.Timestamp(START) - pd.Timedelta(days=5))
                    & (frame[TIMESTAMP] < pd.Timestamp(START + timedelta(days=10)))]
    expected = slow.predict(history)
    window = grid.window(history[TIMESTAMP].iloc[0], pd.Timestamp(START + timedelta(days=10)))
    got = fast.predict_window(window)
    pd.testing.assert_frame_equal(got[["station", "timestamp", "target_time"]],
                                  expected[["station", "timestamp", "target_time"]])
    np.testing.assert_array_equal(got["prediction"], expected["prediction"])
    first, last = START, START + timedelta(days=9)
    fast_days = daily_scores(slow, history, first, last, predictions=got)
    slow_days = daily_scores(slow, history, first, last)
    pd.testing.assert_frame_equal(fast_days, slow_days, check_exact=True)
    assert (slow_days["n"] > 100).all()


def test_the_replay_with_shared_features_scores_like_the_slow_path(city):
    frame, graph = city
    policies = policies_from_names("never,fixed_7,seed_raw,fixed_7+warm")
    fast = run_backtest(frame, policies, SETTINGS, graph=graph)
    slow = run_backtest(frame, policies, SETTINGS, graph=graph, share_features=False)
    assert fast.fits == slow.fits
    train, _ = training_frames(frame, SETTINGS, START + timedelta(days=6))
    grid = ModelStore(frame, graph, SETTINGS).grid
    assert grid.window(train[TIMESTAMP].min(), train[TIMESTAMP].max() + pd.Timedelta(hours=1)) is not None
    assert ModelStore(frame, graph, SETTINGS, share_features=False).grid is None
    for name, result in fast.results.items():
        other = slow.results[name]
        assert [r.decided_on for r in result.retrains] == [r.decided_on for r in other.retrains], name
        pd.testing.assert_frame_equal(result.scores, other.scores, check_exact=True)


def test_warm_policies_continue_the_serving_model(city):
    frame, graph = city
    assert policy_from_name("fixed_14+warm").warm and policy_from_name("fixed_14+warm").interval_days == 14
    both = policy_from_name("default+drift+warm")
    assert both.warm and both.drift is not None and both.performance is not None
    assert not policy_from_name("default").warm and policy_from_name("default+warm").describe()["warm_start"]
    with pytest.raises(ValueError, match="cannot retrain warm"):
        policy_from_name("never+warm")
    policies = policies_from_names("fixed_7,fixed_7+warm,fixed_14+warm")
    backtest = run_backtest(frame, policies, SETTINGS, graph=graph)
    weekly = [r.decided_on for r in backtest.results["fixed_7"].retrains]
    assert [r.decided_on for r in backtest.results["fixed_7+warm"].retrains] == weekly and len(weekly) == 5
    # full fits by day; warm fits by day and parent: fixed_14+warm's day-13 fit continues the
    # initial model, fixed_7+warm's the day-6 warm model, so nothing is shared between them
    assert backtest.fits == 1 + 5 + 5 + 2
    warm, full = backtest.results["fixed_7+warm"], backtest.results["fixed_7"]
    assert warm.scores["rmse"].tolist() != full.scores["rmse"].tolist()

    store = ModelStore(frame, graph, SETTINGS)
    initial = store.get(START - timedelta(days=1))
    day = START + timedelta(days=6)
    warm = store.get(day, parent=initial)
    assert store.get(day, parent=initial) is warm and store.get(day) is not warm
    assert warm.key == (day, (START - timedelta(days=1),))
    rounds = lambda m: m.forecaster.boosters["delta"].num_boosted_rounds()  # noqa: E731
    assert rounds(warm) == rounds(initial) + TINY_MODEL["warm_start_rounds"]
    assert warm.forecaster.training_report["warm_start"]["used"]
    again = store.get(day + timedelta(days=7), parent=warm)
    assert rounds(again) == rounds(initial) + 2 * TINY_MODEL["warm_start_rounds"]


def test_fits_ahead_in_worker_processes_give_the_same_replay(city):
    frame, graph = city
    two_threads = BacktestSettings(start=START, end=END, training=TRAINING, hyperparams={**TINY_MODEL, "nthread": 2})
    policies = policies_from_names("never,fixed_7,fixed_14,seed_raw")
    assert scheduled_days(policies, two_threads) == [START + timedelta(days=7 * k - 1) for k in range(1, 6)]
    ahead = run_backtest(frame, policies, two_threads, graph=graph, workers=2)
    inline = run_backtest(frame, policies, two_threads, graph=graph)
    assert ahead.fits == inline.fits == 1 + 5 + inline.results["seed_raw"].retrain_count
    for name, result in ahead.results.items():  # one-thread fits in workers = two-thread fits here
        pd.testing.assert_frame_equal(result.scores, inline.results[name].scores, check_exact=True)
        assert [r.decided_on for r in result.retrains] == [r.decided_on for r in inline.results[name].retrains]
    assert all(r.cpu_seconds > 0 for r in ahead.results["fixed_7"].retrains)


def test_every_fit_in_workers_gives_the_same_replay_warm_and_triggered_included(city):
    frame, graph = city
    policies = policies_from_names("never,fixed_7,seed_raw,default,fixed_7+warm")
    pooled = run_backtest(frame, policies, SETTINGS, graph=graph, workers=2)
    inline = run_backtest(frame, policies, SETTINGS, graph=graph)
    assert pooled.fits == inline.fits
    assert pooled.results["seed_raw"].retrain_count > 0 and pooled.results["fixed_7+warm"].retrain_count == 5
    for name, result in pooled.results.items():  # warm fits continue a parent sent to the worker
        other = inline.results[name]
        assert [r.decided_on for r in result.retrains] == [r.decided_on for r in other.retrains], name
        pd.testing.assert_frame_equal(result.scores, other.scores, check_exact=True)
    assert pooled.replay_cpu_seconds > 0 and pooled.fit_cpu_seconds > 0


def test_a_fit_the_replay_waits_for_jumps_the_queue(city):
    frame, graph = city
    store = ModelStore(frame, graph, SETTINGS)
    d = [START + timedelta(days=k) for k in range(6)]
    pool = FitPool(store, workers=1, threads=1)
    try:
        pool.ahead(d[:3])
        forecaster, cpu, wall = pool.take(d[2])  # queued behind day 1: goes next
        assert pool.started[:2] == [(d[0],), (d[2],)]
        assert forecaster.is_fitted and cpu > 0 and wall > 0
        pool.ahead(d[4:])
        pool.take(d[3])  # not queued: before days 4 and 5, after day 1 (running by now)
        assert pool.started == [(d[0],), (d[2],), (d[1],), (d[3],)] + pool.started[4:]
        same, _, _ = store.fit_forecaster(d[2])  # a worker's fit is this process's fit
        assert same.boosters["delta"].save_raw() == forecaster.boosters["delta"].save_raw()
    finally:
        pool.close()
