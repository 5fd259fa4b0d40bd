"""Logging a candidate to MLflow: params, metrics, trigger tags, the model, and its new version.

Every retraining run carries ``run_type`` (``retraining``) and its trigger's type, reason and
severity as params and tags, the model's and the training settings' params, the holdout metrics
(the champion's beside them) and ``training_duration_seconds``.
"""

from __future__ import annotations

import pandas as pd

from aqi_assets.core.training.candidate import Candidate
from aqi_assets.core.configuration.config import TrainingSettings
from aqi_assets.core.training.forecasting import log_forecaster
from aqi_assets.core.training.registry import registered_model_name
from aqi_assets.core.data.schema import STATION, TIMESTAMP


def _flat(prefix: str, values: dict) -> dict:
    return {f"{prefix}{k}": v for k, v in values.items() if isinstance(v, (int, float, str, bool)) and v is not None}


def input_example(candidate: Candidate) -> pd.DataFrame:
    """The last ``lookback + 2`` hours of the holdout for every station (enough for forecasts)."""
    frame = candidate.scoring_frame
    hours = candidate.forecaster.lookback_hours + 2
    cutoff = frame[TIMESTAMP].max() - pd.Timedelta(hours=hours)
    return frame[frame[TIMESTAMP] > cutoff].sort_values([TIMESTAMP, STATION]).reset_index(drop=True)


def log_candidate(candidate: Candidate, settings: TrainingSettings, tags: dict[str, str]) -> dict:
    """Log the candidate in a (nested, when a run is active) MLflow run and register a version.

    Returns ``{"mlflow_run_id", "mlflow_experiment_id", "version", "model_uri", "registered_model"}``.
    """
    import mlflow  # imported here: the code location loads this module without MLflow
    from mlflow.tracking import MlflowClient

    name = registered_model_name(candidate.model)
    nested = mlflow.active_run() is not None
    with mlflow.start_run(run_name=f"{candidate.model}-candidate", nested=nested) as run:
        mlflow.set_tags({**tags, "aqi/model": candidate.model, "aqi/trained_through": candidate.trained_through.isoformat()})
        mlflow.log_params({"run_type": "retraining",
                           **{f"trigger_{k.split('/')[-1]}": v[:500] for k, v in tags.items() if k.startswith("aqi/")},
                           **_flat("hp.", candidate.forecaster.params()),
                           **_flat("training.", settings.model_dump())})
        metrics = _flat("holdout_", candidate.metrics)
        if candidate.champion_metrics:
            metrics.update(_flat("champion_holdout_", candidate.champion_metrics))
        metrics.update({"training_duration_seconds": candidate.train_seconds,
                        "train_cpu_seconds": candidate.train_cpu_seconds})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if not isinstance(v, str)})
        mlflow.log_dict(candidate.record(), "candidate.json")
        info = log_forecaster(candidate.forecaster, input_example=input_example(candidate),
                              registered_model_name=name)
    version = str(info.registered_model_version)
    client = MlflowClient()
    client.set_model_version_tag(name, version, "stage", "Candidate")
    client.set_model_version_tag(name, version, "aqi.trained_through", candidate.trained_through.isoformat())
    for key in ("aqi/trigger_type", "aqi/reason", "dagster_run_id"):
        if key in tags:
            client.set_model_version_tag(name, version, key.replace("/", "."), tags[key][:250])
    return {"mlflow_run_id": run.info.run_id, "mlflow_experiment_id": run.info.experiment_id, "version": version,
            "model_uri": f"models:/{name}/{version}", "registered_model": name}
