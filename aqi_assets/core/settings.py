"""Where the platform keeps its state, from the environment: Dagster home, data lake, MLflow.

| variable | default |
|---|---|
| ``DAGSTER_HOME`` | ``./.dagster_home`` (the Makefile sets it inside the project) |
| ``AQI_LAKE_DIR`` | ``$DAGSTER_HOME/lake`` — observations, feature stats, scores, reports |
| ``MLFLOW_TRACKING_URI`` | ``sqlite:///$DAGSTER_HOME/mlflow/mlflow.db`` (embedded) |
| ``AQI_MLFLOW_ARTIFACTS`` | ``$DAGSTER_HOME/mlflow/artifacts`` (artifact root of new experiments) |
| ``AQI_MLFLOW_EXPERIMENT`` | ``aqi_retraining`` |
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_EXPERIMENT = "aqi_retraining"


def platform_home() -> Path:
    home = os.environ.get("DAGSTER_HOME")
    return Path(home).expanduser().resolve() if home else (Path.cwd() / ".dagster_home").resolve()


def lake_root() -> Path:
    explicit = os.environ.get("AQI_LAKE_DIR")
    return Path(explicit).expanduser().resolve() if explicit else platform_home() / "lake"


def mlflow_tracking_uri() -> str:
    explicit = os.environ.get("MLFLOW_TRACKING_URI")
    if explicit:
        return explicit
    folder = platform_home() / "mlflow"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}"


def mlflow_artifact_root() -> str:
    explicit = os.environ.get("AQI_MLFLOW_ARTIFACTS")
    return explicit or str(platform_home() / "mlflow" / "artifacts")


def mlflow_experiment() -> str:
    return os.environ.get("AQI_MLFLOW_EXPERIMENT") or DEFAULT_EXPERIMENT
