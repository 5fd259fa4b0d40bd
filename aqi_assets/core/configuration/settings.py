"""Where the platform keeps its state, from the environment: Dagster home, data lake, MLflow.

| variable | default |
|---|---|
| ``DAGSTER_HOME`` | ``./.dagster_home`` (the Makefile sets it inside the project) |
| ``AQI_LAKE_DIR`` | ``$DAGSTER_HOME/lake`` — observations, feature stats, scores, reports |
| ``MLFLOW_TRACKING_URI`` | ``sqlite:///$DAGSTER_HOME/mlflow/mlflow.db`` (embedded) |
| ``AQI_MLFLOW_ARTIFACTS`` | ``$DAGSTER_HOME/mlflow/artifacts`` (artifact root of new experiments) |
| ``AQI_MLFLOW_EXPERIMENT`` | ``aqi_retraining`` |
| ``AQI_MLFLOW_UI_URL`` | ``http://127.0.0.1:5000`` (the MLflow UI ``make dev`` starts) — links in asset metadata |
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


def mlflow_ui_url() -> str:
    return (os.environ.get("AQI_MLFLOW_UI_URL") or "http://127.0.0.1:5000").rstrip("/")


def mlflow_run_url(experiment_id: str, run_id: str) -> str:
    return f"{mlflow_ui_url()}/#/experiments/{experiment_id}/runs/{run_id}"


def mlflow_version_url(registered_model: str, version: str) -> str:
    return f"{mlflow_ui_url()}/#/models/{registered_model}/versions/{version}"


#: Environment switch that stops every automatic trigger (manual retraining still works).
AUTOMATION_ENV = "AQI_AUTOMATED_RETRAINING_ENABLED"


def automation_off_reason(enabled_in_config: bool = True) -> str | None:
    """Why automatic retraining is off (``AQI_AUTOMATED_RETRAINING_ENABLED`` or the config switch), or None."""
    value = os.environ.get(AUTOMATION_ENV, "").strip().lower()
    if value in {"0", "false", "no", "off"}:
        return f"automated retraining is off ({AUTOMATION_ENV}={os.environ[AUTOMATION_ENV].strip()})"
    if not enabled_in_config:
        return "automated retraining is off (operations.automated_retraining = false)"
    return None
