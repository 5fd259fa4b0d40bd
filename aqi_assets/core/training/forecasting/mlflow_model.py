"""Forecasters as MLflow models: a pyfunc wrapper, ``log_forecaster`` and ``load_forecaster``.

The logged model holds the forecaster's saved directory as the artifact ``forecaster``; the
pyfunc's input is a canonical observation frame (the history) and its output the prediction
frame (``station, timestamp, target_time, prediction``). Loading needs this package importable
(the pyfunc class lives here). Requirements are listed explicitly so logging never spawns a
process to infer them.
"""

from __future__ import annotations

import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import infer_signature
from mlflow.models.model import ModelInfo

from aqi_assets.core.training.forecasting.base import Forecaster, empty_predictions
from aqi_assets.core.training.forecasting.factory import read_forecaster

ARTIFACT_KEY = "forecaster"
_REQUIREMENTS = ("mlflow", "pandas", "numpy", "scipy", "xgboost", "torch", "torch-geometric")


class ForecasterPyfunc(mlflow.pyfunc.PythonModel):
    """``predict(history) -> predictions`` of the forecaster stored in the model's artifacts."""

    def __init__(self):
        self.forecaster: Forecaster | None = None

    def load_context(self, context) -> None:
        self.forecaster = read_forecaster(context.artifacts[ARTIFACT_KEY])

    def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        return self.forecaster.predict(model_input)


def pip_requirements() -> list[str]:
    """Pinned requirements of the installed versions (``torch`` without its local build tag)."""
    pins = []
    for name in _REQUIREMENTS:
        try:
            version = metadata.version(name).split("+")[0]
        except metadata.PackageNotFoundError:
            continue
        pins.append(f"{name}=={version}")
    return pins


def log_forecaster(forecaster: Forecaster, input_example: pd.DataFrame, name: str = "model",
                   registered_model_name: str | None = None) -> ModelInfo:
    """Log ``forecaster`` to the active MLflow run (one is started if none is active).

    ``input_example`` is a small canonical frame: it becomes the logged example, and with the
    forecaster's predictions on it the model signature (an example shorter than the lookback
    gives no predictions; the output schema then comes from an empty prediction frame).
    """
    prediction = forecaster.predict(input_example)
    if prediction.empty:
        prediction = empty_predictions()
    signature = infer_signature(input_example, prediction)
    with tempfile.TemporaryDirectory(prefix="forecaster-") as tmp:
        path = forecaster.save(Path(tmp) / ARTIFACT_KEY)
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=ForecasterPyfunc(),
            artifacts={ARTIFACT_KEY: str(path)},
            signature=signature,
            input_example=input_example,
            pip_requirements=pip_requirements(),
            registered_model_name=registered_model_name,
        )


def load_forecaster(model_uri: str) -> Forecaster:
    """The ``Forecaster`` inside a model logged by ``log_forecaster`` (any MLflow model URI)."""
    model = mlflow.pyfunc.load_model(model_uri)
    wrapper = model.unwrap_python_model()
    if not isinstance(wrapper, ForecasterPyfunc) or wrapper.forecaster is None:
        raise ValueError(f"{model_uri} is not a forecaster logged by log_forecaster")
    return wrapper.forecaster
