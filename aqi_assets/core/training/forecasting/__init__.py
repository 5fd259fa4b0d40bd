"""Station forecasting (Dagster-free): specs, the window split, three trainers, scoring, MLflow.

The whole contract the Dagster layer, live-performance scoring and the backtest rely on::

    from aqi_assets.core.training.forecasting import (
        ForecastSpec, Forecaster, make_forecaster, split_window, evaluate,
        log_forecaster, load_forecaster)
    from aqi_assets.core.data.station_graph import StationGraph, build_station_graph

    spec = ForecastSpec(target="pm25", horizon_hours=1)         # frozen; 24 works too
    train, valid, holdout = split_window(frame, settings, end)   # settings: TrainingSettings
    graph = build_station_graph(source.stations())               # k nearest, wind-aware bearings
    model = make_forecaster("gnn", spec, preset="full", max_epochs=20)   # "xgboost" | "lstm" | "gnn"
    report = model.fit(train, valid, graph, progress=print)      # dict: seconds, epochs/rounds, ...
    metrics = evaluate(model, pd.concat([valid, holdout]), *holdout_days)
    predictions = model.predict(history)                         # see below
    model.save(directory); model = read_forecaster(directory)
    info = log_forecaster(model, input_example=history.head(48), registered_model_name="aqi-gnn")
    model = load_forecaster(info.model_uri)                      # or "models:/aqi-gnn@champion"

``Forecaster`` (``base.py``): ``kind`` ("xgboost" | "lstm" | "gnn"), ``spec``,
``hyperparams``, ``lookback_hours`` (history a forecast reads), ``graph``,
``training_report``; ``fit(train, valid=None, graph=None, progress=None) -> dict``;
``predict(history) -> DataFrame[station, timestamp, target_time, prediction]`` with one row per
(station, issue time t) forecastable from rows ≤ t: the station has a row at t, its target was
observed at t or at most two hours before, and ``history`` holds ``lookback_hours`` before t;
``save(dir)``, ``read_forecaster(dir)`` (any kind), ``params() -> dict`` for MLflow.

``make_forecaster(kind, spec=None, preset="full" | "fast", **hyperparams)``;
``default_hyperparams(kind, preset)`` lists them. ``fast`` is for tests and demos (seconds on a
few stations × weeks); ``full`` is for real training (each kind about 1-2 minutes on 2 cores for
12 stations × 3 years, ``make bench-models``; the torch kinds stop on validation early stopping
and at ``max_seconds`` as a safety cap).

``split_window(frame, settings, end=None) -> WindowSplit(train, valid, holdout)``: the latest
``window_days`` ending on ``end``, split by calendar day (holdout last).

``evaluate(forecaster, frame, start, end) -> dict``: forecasts whose *target hour* falls on the
days ``start``..``end`` (``frame`` must also hold the lookback before ``start``), scored beside
persistence on the same rows: ``n, rmse, mae, within_20, aqi_category_accuracy``,
``persistence_*`` of each, ``rmse_skill``. Metrics live in ``aqi_assets.core.training.metrics``.

Missing readings are NaN: XGBoost takes them as they are; the LSTM (and the GNN's sequence
encoder) fill them from the past (carry forward, then the training mean), the GNN's feature
encoder with the training mean and a missing flag, with statistics learned at fit time.
Long work reports progress through ``progress(message)`` and the ``logging`` logger of
``aqi_assets.core.training.forecasting.base``.
"""

from aqi_assets.core.training.forecasting.base import PREDICTION_COLUMNS, Forecaster
from aqi_assets.core.training.forecasting.evaluation import evaluate, persistence_metrics, scored_predictions
from aqi_assets.core.training.forecasting.factory import (
    FORECASTER_KINDS,
    default_hyperparams,
    make_forecaster,
    read_forecaster,
)
from aqi_assets.core.training.forecasting.spec import ForecastSpec
from aqi_assets.core.training.forecasting.split import WindowSplit, split_window


# MLflow is imported only when its helpers are called (it is slow to import), so importing these
# names, as the code location does, costs nothing.
def log_forecaster(*args, **kwargs):
    """See ``mlflow_model.log_forecaster``."""
    from aqi_assets.core.training.forecasting import mlflow_model

    return mlflow_model.log_forecaster(*args, **kwargs)


def load_forecaster(*args, **kwargs):
    """See ``mlflow_model.load_forecaster``."""
    from aqi_assets.core.training.forecasting import mlflow_model

    return mlflow_model.load_forecaster(*args, **kwargs)


__all__ = [
    "FORECASTER_KINDS",
    "PREDICTION_COLUMNS",
    "ForecastSpec",
    "Forecaster",
    "WindowSplit",
    "default_hyperparams",
    "evaluate",
    "load_forecaster",
    "log_forecaster",
    "make_forecaster",
    "read_forecaster",
    "persistence_metrics",
    "scored_predictions",
    "split_window",
]
