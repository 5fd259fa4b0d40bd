"""``model_performance``: each serving model scored every day on that day's observed values."""

from datetime import date

import dagster as dg
import pandas as pd

from aqi_assets.core.training import registry
from aqi_assets.core.configuration.config import MODEL_NAMES
from aqi_assets.core.training.forecasting import Forecaster, load_forecaster
from aqi_assets.core.monitoring.live_scoring import TRAINED_THROUGH_TAG, history_for, in_training_window, score_day, score_frame
from aqi_assets.defs.metadata import markdown_table
from aqi_assets.defs.partitions import daily_partitions
from aqi_assets.defs.resources import LakeResource, MlflowRegistryResource

_LOADED: dict[tuple[str, str, str], Forecaster] = {}


def _serving_model(model: str, version: str, uri: str) -> Forecaster:
    """The champion's forecaster, loaded once per process and version."""
    key = (uri, model, version)
    if key not in _LOADED:
        _LOADED[key] = load_forecaster(f"models:/{registry.registered_model_name(model)}/{version}")
    return _LOADED[key]


@dg.asset(
    partitions_def=daily_partitions,
    group_name="monitoring",
    kinds={"pandas", "mlflow"},
    deps=["observations"],
    description=(
        "Per day and model: the serving champion's RMSE, MAE, share within ±20 %, AQI category "
        "accuracy, and persistence on the same rows — what the degradation sensor watches."
    ),
)
def model_performance(context: dg.AssetExecutionContext, lake: LakeResource,
                      mlflow_registry: MlflowRegistryResource) -> dg.MaterializeResult[pd.DataFrame]:
    day = date.fromisoformat(context.partition_key)
    client = mlflow_registry.client()
    store = lake.get()
    rows = []
    for model in MODEL_NAMES:
        champion = registry.champion(model, client)
        if champion is None:
            context.log.info(f"{model}: no champion yet, nothing to score")
            continue
        trained_through = champion.tags.get(TRAINED_THROUGH_TAG)
        if in_training_window(day, trained_through):
            context.log.info(f"{model} v{champion.version}: {day} is inside its training window "
                             f"(trained through {trained_through}); not scored")
            continue
        forecaster = _serving_model(model, str(champion.version), client.tracking_uri)
        history = history_for(store, day, forecaster.lookback_hours, forecaster.spec.horizon_hours)
        row = score_day(model, forecaster, str(champion.version), champion.tags.get(registry.SERVING_SINCE_TAG),
                        history, day)
        if row is None:
            context.log.warning(f"{model} v{champion.version}: no scorable forecast on {day}")
            continue
        rows.append(row)
    frame = score_frame(rows)
    shown = frame[["model", "champion_version", "n", "rmse", "persistence_rmse", "within_20", "aqi_category_accuracy"]]
    metadata = {"dagster/row_count": len(frame), "scores": markdown_table(shown, floatfmt=".3g")}
    for row in rows:
        metadata[f"{row['model']}_rmse"] = float(row["rmse"])
    return dg.MaterializeResult(value=frame, metadata=metadata)


ingest_day = dg.define_asset_job(
    name="ingest_day",
    selection=dg.AssetSelection.assets("observations", "feature_stats", "model_performance"),
    partitions_def=daily_partitions,
    description="One day of the source: observations (with quality gates), feature sketches, live scores.",
)
