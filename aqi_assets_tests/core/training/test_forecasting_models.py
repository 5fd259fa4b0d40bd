"""The three forecasters behind one interface: fit, predict's contract, causality, persistence, save/load."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from aqi_assets.core.training.forecasting import (
    FORECASTER_KINDS,
    PREDICTION_COLUMNS,
    ForecastSpec,
    Forecaster,
    default_hyperparams,
    evaluate,
    make_forecaster,
    read_forecaster,
)
from aqi_assets.core.data.sources.simulated import SimulatedSource
from aqi_assets.core.training.forecasting.panel import Panel
from aqi_assets.core.data.station_graph import build_station_graph

TRAIN = (date(2024, 1, 1), date(2024, 2, 4))
VALID = (date(2024, 2, 5), date(2024, 2, 9))
TEST = (date(2024, 2, 10), date(2024, 2, 16))


@pytest.fixture(scope="module")
def source():
    return SimulatedSource(seed=11, n_stations=6, start=date(2024, 1, 1), end=date(2024, 3, 1))


@pytest.fixture(scope="module")
def data(source):
    read = lambda span: source.read_range(*span)  # noqa: E731
    return {"train": read(TRAIN), "valid": read(VALID), "test": read(TEST),
            "graph": build_station_graph(source.stations(), k=2)}


@pytest.fixture(scope="module")
def fitted(data):
    """One fast-preset forecaster of each kind, fitted once for the module."""
    models = {}
    for kind in FORECASTER_KINDS:
        model = make_forecaster(kind, ForecastSpec(), preset="fast")
        model.fit(data["train"], data["valid"], data["graph"])
        models[kind] = model
    return models


def history(data) -> pd.DataFrame:
    return pd.concat([data["valid"], data["test"]], ignore_index=True)


@pytest.mark.parametrize("kind", FORECASTER_KINDS)
def test_predict_returns_one_row_per_forecastable_station_hour(kind, fitted, data):
    model = fitted[kind]
    frame = history(data)
    out = model.predict(frame)
    assert list(out.columns) == list(PREDICTION_COLUMNS)
    assert (out["target_time"] - out["timestamp"] == pd.Timedelta(hours=1)).all()
    assert not out.duplicated(["station", "timestamp"]).any()
    assert np.isfinite(out["prediction"]).all() and (out["prediction"] >= 0).all()
    first = frame["timestamp"].min()
    assert out["timestamp"].min() == first + pd.Timedelta(hours=model.lookback_hours)
    # every station-hour with a current reading and enough history gets a forecast
    eligible = frame[(frame["timestamp"] >= out["timestamp"].min()) & frame["pm25"].notna()]
    assert len(out) >= len(eligible)
    assert len(out) <= len(frame[frame["timestamp"] >= out["timestamp"].min()])


@pytest.mark.parametrize("kind", FORECASTER_KINDS)
def test_forecasts_read_only_rows_up_to_the_issue_time(kind, fitted, data):
    model = fitted[kind]
    frame = history(data)
    cut = pd.Timestamp("2024-02-13 05:00")
    changed = frame.copy()
    later = changed["timestamp"] > cut
    changed.loc[later, ["pm25", "pm10", "temperature", "wind_speed"]] += 40.0
    changed.loc[later, "wind_direction"] = "S"
    a = model.predict(frame[frame["timestamp"] <= cut])
    b = model.predict(changed)
    b = b[b["timestamp"] <= cut].reset_index(drop=True)
    assert len(a) > 100
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("kind", FORECASTER_KINDS)
def test_fitted_model_beats_persistence_on_unseen_days(kind, fitted, data):
    metrics = evaluate(fitted[kind], history(data), *TEST)
    assert metrics["n"] > 400
    assert metrics["rmse"] < metrics["persistence_rmse"]
    assert 0 < metrics["within_20"] <= 1


@pytest.mark.parametrize("kind", FORECASTER_KINDS)
def test_save_and_load_give_identical_predictions(kind, fitted, data, tmp_path):
    model = fitted[kind]
    model.save(tmp_path / kind)
    loaded = read_forecaster(tmp_path / kind)
    assert type(loaded) is type(model) and loaded.params() == model.params()
    assert loaded.training_report["seconds"] == pytest.approx(model.training_report["seconds"])
    frame = history(data)
    pd.testing.assert_frame_equal(loaded.predict(frame), model.predict(frame))
    other = "lstm" if kind != "lstm" else "gnn"
    with pytest.raises(ValueError, match=f"holds a {kind} forecaster"):
        type(fitted[other]).from_saved(tmp_path / kind)


@pytest.mark.parametrize("kind", FORECASTER_KINDS)
def test_day_ahead_horizon_and_gappy_data(kind, data):
    rng = np.random.default_rng(0)
    gappy = {}
    for part in ("train", "valid", "test"):
        frame = data[part].copy()
        holes = rng.random(len(frame)) < 0.15
        frame.loc[holes, ["pm25", "no2", "temperature"]] = np.nan
        gappy[part] = frame
    outage = (gappy["test"]["station"] == "S0002") & gappy["test"]["timestamp"].between(
        "2024-02-12 00:00", "2024-02-12 09:00")
    gappy["test"].loc[outage, "pm25"] = np.nan
    model = make_forecaster(kind, ForecastSpec(horizon_hours=24), preset="fast")
    messages = []
    report = model.fit(gappy["train"], gappy["valid"], data["graph"], progress=messages.append)
    assert report["seconds"] > 0 and messages
    out = model.predict(pd.concat([gappy["valid"], gappy["test"]], ignore_index=True))
    assert (out["target_time"] - out["timestamp"] == pd.Timedelta(hours=24)).all()
    assert np.isfinite(out["prediction"]).all()
    # no forecast once the station's last reading is more than two hours old
    silent = out[(out["station"] == "S0002") & out["timestamp"].between("2024-02-12 02:00", "2024-02-12 09:00")]
    assert silent.empty
    assert len(out[out["station"] == "S0002"]) > 100


def test_new_stations_and_a_missing_graph_are_handled(fitted, data):
    frame = history(data)
    renamed = frame.assign(station=frame["station"].replace({"S0006": "NEW"}))
    for kind in ("xgboost", "gnn"):
        out = fitted[kind].predict(renamed)
        assert (out["station"] == "NEW").sum() > 100
    model = make_forecaster("gnn", preset="fast", max_epochs=1)
    model.fit(data["train"], data["valid"], graph=None)
    assert model.graph.n_edges == 6 * 5  # every station linked to every other
    assert len(model.predict(frame)) > 100


def test_factory_presets_and_hyperparameters():
    assert default_hyperparams("gnn", "fast")["hidden"] < default_hyperparams("gnn")["hidden"]
    model = make_forecaster("xgboost", ForecastSpec(horizon_hours=3), max_depth=3)
    params = model.params()
    assert params["kind"] == "xgboost" and params["horizon_hours"] == 3 and params["max_depth"] == 3
    with pytest.raises(ValueError, match="unknown hyperparameter"):
        make_forecaster("lstm", hidden_size=3)
    with pytest.raises(ValueError, match="unknown forecaster kind"):
        make_forecaster("arima")
    with pytest.raises(RuntimeError, match="not fitted"):
        model.predict(pd.DataFrame())


@pytest.mark.parametrize("schedule, max_seconds, epochs", [("cosine", 1e6, 4), ("cosine_budget", 1e6, 4),
                                                            ("cosine_budget", 1e-9, 1)])
def test_cosine_schedules_end_at_a_low_learning_rate(schedule, max_seconds, epochs):
    """``cosine`` decays over ``max_epochs``; ``cosine_budget`` also over the time budget."""
    import torch

    from aqi_assets.core.training.forecasting.torch_training import train_loop

    torch.manual_seed(0)
    net = torch.nn.Linear(2, 1)
    x, y = torch.randn(64, 2), torch.randn(64)
    rates: list[float] = []
    original = torch.optim.AdamW.step

    def loss(model, idx):
        return ((model(x[idx]).squeeze(-1) - y[idx]) ** 2).mean(), len(idx)

    def recording_step(self, *args, **kwargs):
        rates.append(self.param_groups[0]["lr"])
        return original(self, *args, **kwargs)

    torch.optim.AdamW.step = recording_step
    try:
        report = train_loop(net, lambda: [torch.arange(i, i + 16) for i in range(0, 64, 16)], None, loss,
                            max_epochs=4, patience=10, learning_rate=0.1, weight_decay=0.0,
                            max_seconds=max_seconds, progress=None, label="t", schedule=schedule)
    finally:
        torch.optim.AdamW.step = original
    assert report["epochs"] == epochs
    assert rates[0] <= 0.1 and rates[-1] < 0.1 * 0.1  # decayed to (nearly) the floor of 2 %
    with pytest.raises(ValueError, match="schedule"):
        train_loop(net, lambda: [], None, loss, max_epochs=1, patience=1, learning_rate=0.1, weight_decay=0.0,
                   max_seconds=1.0, progress=None, label="t", schedule="linear")


SMALL_NETWORKS = {
    # NO2 with temperature and wind only (the shape of a small city network)
    "no2": ("seed=5,stations=5,start=2024-01-01,end=2024-03-01,columns=no2+temperature+wind_speed+wind_direction",
            "no2"),
    # PM2.5 and relative humidity only (a low-cost sensor network)
    "pm25_humidity": ("seed=5,stations=5,start=2024-01-01,end=2024-03-01,columns=pm25+humidity", "pm25"),
}


@pytest.mark.parametrize("kind", FORECASTER_KINDS)
@pytest.mark.parametrize("network", sorted(SMALL_NETWORKS))
def test_small_networks_train_on_what_they_measure_and_beat_persistence(kind, network):
    spec_text, target = SMALL_NETWORKS[network]
    source = SimulatedSource.from_spec(spec_text)
    read = lambda span: source.read_range(*span)  # noqa: E731
    train, valid, test = read(TRAIN), read(VALID), read(TEST)
    model = make_forecaster(kind, ForecastSpec(target=target), preset="fast")
    model.fit(train, valid, build_station_graph(source.stations(), k=2))
    measured = set(source.network().measured)
    if kind in ("xgboost", "gnn"):  # the GNN's default encoder reads the same tabular features
        names = set(model.feature_names if kind == "xgboost" else model.scaler.channel_names)
        assert "temperature" not in names or "temperature" in measured
        assert not any(n.startswith(("pressure", "dew", "rain", "pm10", "co")) for n in names)
        assert ("upwind_mean" in names) == ("wind_direction" in measured)
        assert ("humidity" in names) == ("humidity" in measured)
    else:
        channels = set(model.scaler.channel_names)
        assert {c for c in channels if not c.startswith("target_")} <= measured | {"wind_u", "wind_v"}
        assert target in channels and model.scaler.mask_names == [target]
    metrics = evaluate(model, pd.concat([valid, test], ignore_index=True), *TEST)
    assert metrics["n"] > 500
    assert np.isfinite(metrics["rmse"]) and metrics["rmse"] < 1.1 * metrics["persistence_rmse"]


def test_a_target_the_training_frame_does_not_have_is_named():
    source = SimulatedSource.from_spec(SMALL_NETWORKS["pm25_humidity"][0])
    frame = source.read_range(*TRAIN)
    with pytest.raises(ValueError, match=r"has no column 'no2' \(the target\); it has pm25, humidity"):
        make_forecaster("xgboost", ForecastSpec(target="no2"), preset="fast").fit(frame)
    frame["pm25"] = np.nan
    with pytest.raises(ValueError, match=r"the target column 'pm25' is empty"):
        make_forecaster("lstm", ForecastSpec(target="pm25"), preset="fast").fit(frame)
    with pytest.raises(ValueError, match="expected a pollutant"):
        ForecastSpec(target="temperature")


# --- warm start: continue from the champion --------------------------------------------------
def _snapshot(model):
    if model.kind == "xgboost":
        return {name: bytes(b.save_raw("json")) for name, b in model.boosters.items()}
    return {k: v.clone() for k, v in model.net.state_dict().items()}


def _same(a, b) -> bool:
    if a.keys() != b.keys():
        return False
    return all((a[k] == b[k]) if isinstance(a[k], bytes) else bool((a[k] == b[k]).all()) for k in a)


@pytest.mark.parametrize("kind", FORECASTER_KINDS)
def test_warm_start_continues_from_the_champion_and_leaves_it_untouched(kind, fitted, data):
    champion = fitted[kind]
    before = _snapshot(champion)
    champion_predictions = champion.predict(history(data))
    warm = make_forecaster(kind, ForecastSpec(), preset="fast")
    report = warm.fit(data["valid"], data["test"], data["graph"], warm_start=champion)
    assert report["warm_start"]["used"] is True
    assert _same(_snapshot(champion), before)  # the champion is not modified
    pd.testing.assert_frame_equal(champion.predict(history(data)), champion_predictions)
    if kind == "xgboost":
        for name, booster in warm.boosters.items():
            old = champion.boosters[name].num_boosted_rounds()
            assert report["warm_start"]["champion_rounds"][name] == old
            assert old < booster.num_boosted_rounds() <= old + warm.hyperparams["warm_start_rounds"]
            # the champion's trees are kept as they are: the first ``old`` rounds predict alike
            assert booster[:old].save_raw("json") == champion.boosters[name].save_raw("json")
    else:
        assert 1 <= report["epochs"] <= warm.hyperparams["warm_start_epochs"] == 2
        assert warm.scaler.to_dict() == champion.scaler.to_dict()  # inputs scaled as the weights expect
        assert not _same(_snapshot(warm), before)  # fine-tuned, not copied
    scored = evaluate(warm, pd.concat([data["valid"], data["test"]]), *TEST)
    assert scored["rmse"] < scored["persistence_rmse"]


@pytest.mark.parametrize("kind", FORECASTER_KINDS)
def test_warm_start_from_an_incompatible_champion_trains_from_scratch_and_says_why(kind, fitted, data):
    day_ahead = make_forecaster(kind, ForecastSpec(horizon_hours=24), preset="fast")
    report = day_ahead.fit(data["train"], data["valid"], data["graph"], warm_start=fitted[kind])
    assert report["warm_start"]["used"] is False
    assert "forecasts" in report["warm_start"]["reason"]
    assert report == day_ahead.training_report and day_ahead.is_fitted
    other = "lstm" if kind != "lstm" else "gnn"
    report = make_forecaster(kind, ForecastSpec(), preset="fast").fit(
        data["valid"], data["test"], data["graph"], warm_start=fitted[other])
    assert report["warm_start"] == {"used": False, "reason": f"the champion is a {other} model, not {kind}"}


@pytest.mark.parametrize("load, expected", [(0.0, 4), (1.4, 3), (2.6, 1), (11.0, 1)])
def test_torch_trainers_use_the_free_cores(monkeypatch, load, expected):
    """Cores minus the busy ones, rounded, at least one; the busy ones are measured now."""
    import torch

    from aqi_assets.core.training.forecasting import torch_training

    monkeypatch.setattr(torch_training, "available_cores", lambda: 4)
    monkeypatch.setattr(torch_training, "busy_cores", lambda: load)
    assert torch_training.free_cores() == expected
    before = torch.get_num_threads()
    try:
        torch_training.set_torch_threads(0)
        assert torch.get_num_threads() == expected
        torch_training.set_torch_threads(3)  # an explicit count is taken as it is
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


# --- the GNN's two node encoders --------------------------------------------------------------
def test_gnn_sequence_encoder_trains_saves_and_loads(data, tmp_path):
    model = make_forecaster("gnn", ForecastSpec(), preset="fast", node_inputs="sequence", window_hours=6)
    model.fit(data["train"], data["valid"], data["graph"])
    assert model.lookback_hours == 5 and "target_change1" in model.scaler.channel_names
    frame = history(data)
    metrics = evaluate(model, frame, *TEST)
    assert metrics["rmse"] < metrics["persistence_rmse"]
    loaded = read_forecaster(model.save(tmp_path / "seq"))
    pd.testing.assert_frame_equal(loaded.predict(frame), model.predict(frame))


def test_gnn_features_encoder_reads_each_station_features_and_a_switch_of_encoder_is_not_continued(fitted, data):
    model = fitted["gnn"]
    assert model.hyperparams["node_inputs"] == "features" and model.lookback_hours == 72
    assert {"y_now", "y_lag24", "net_mean", "upwind_mean"} <= set(model.scaler.channel_names)
    assert not any(name.startswith("nn") for name in model.scaler.channel_names)  # the graph layers see neighbours
    inputs = model.scaler.inputs(Panel.from_frame(history(data).drop(columns=["pressure"])), data["graph"])
    assert inputs.shape[-1] == model.scaler.n_channels and np.isfinite(inputs).all()
    assert not inputs[..., model.scaler.channel_names.index("pressure")].any()  # a missing column reads as the mean
    sequence = make_forecaster("gnn", ForecastSpec(), preset="fast", node_inputs="sequence")
    report = sequence.fit(data["train"], data["valid"], data["graph"], warm_start=model)
    assert report["warm_start"] == {"used": False, "reason": "the champion reads other input channels (the network changed)"}
    with pytest.raises(ValueError, match="node_inputs must be one of"):
        make_forecaster("gnn", node_inputs="image")


def test_busy_cores_are_sampled_now_not_averaged_over_the_last_minute(monkeypatch):
    from aqi_assets.core.training.forecasting import torch_training

    monkeypatch.setattr(torch_training.os, "getloadavg", lambda: (9.0, 9.0, 9.0))  # ignored while psutil works
    busy = torch_training.busy_cores(sample_seconds=0.1)
    assert 0.0 <= busy <= torch_training.available_cores() + 1e-9
