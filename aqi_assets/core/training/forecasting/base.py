"""The ``Forecaster`` interface every trainer implements, and the plumbing they share.

A forecaster is built for one ``ForecastSpec`` with hyperparameters (its kind's defaults,
overridden by keyword), then

- ``fit(train, valid, graph, progress)`` learns from canonical observation frames and returns a
  training report (seconds, epochs or boosting rounds, validation loss, ...);
- ``predict(history)`` returns one row per (station, issue time t) it can forecast from rows
  ≤ t of ``history``: ``station, timestamp`` (= t), ``target_time`` (= t + horizon),
  ``prediction``. A forecast is issued when the station has a row at t, its target was observed
  at most ``BASE_FILL_HOURS`` before t, and ``history`` reaches ``lookback_hours`` back from t;
- ``save(directory)`` / ``factory.read_forecaster(directory)`` persist it as plain files
  (``forecaster.json`` plus the kind's model files);
- ``params()`` is the flat dict logged to MLflow.

Rows of ``train`` are those whose target hour still lies inside ``train``; ``valid`` may look
back into ``train`` for lags (the two are laid on one grid), never forward.
"""

from __future__ import annotations

import abc
import json
import logging
import time
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np
import pandas as pd

from aqi_assets.core.training.forecasting.panel import Panel, shift
from aqi_assets.core.training.forecasting.spec import ForecastSpec
from aqi_assets.core.training.forecasting.tabular_features import base_value
from aqi_assets.core.data.schema import STATION, TIMESTAMP
from aqi_assets.core.data.station_graph import StationGraph

Progress = Callable[[str], None]
PREDICTION_COLUMNS: tuple[str, ...] = (STATION, TIMESTAMP, "target_time", "prediction")
META_FILE = "forecaster.json"
log = logging.getLogger(__name__)


def report_progress(progress: Progress | None, message: str) -> None:
    """Send ``message`` to ``progress`` when given, and always to this module's logger."""
    log.info(message)
    if progress is not None:
        progress(message)


class Forecaster(abc.ABC):
    """Forecasts ``spec.target`` ``spec.horizon_hours`` ahead for every station of a frame."""

    kind: ClassVar[str]
    #: Hyperparameters of real training runs; ``FAST`` overrides a few for tests and demos.
    DEFAULTS: ClassVar[dict[str, Any]]
    FAST: ClassVar[dict[str, Any]]

    def __init__(self, spec: ForecastSpec | None = None, **hyperparams: Any):
        self.spec = spec or ForecastSpec()
        unknown = sorted(set(hyperparams) - set(self.DEFAULTS))
        if unknown:
            raise ValueError(f"{self.kind}: unknown hyperparameter(s) {unknown}; known: {sorted(self.DEFAULTS)}")
        self.hyperparams: dict[str, Any] = {**self.DEFAULTS, **hyperparams}
        self.graph: StationGraph | None = None
        self.training_report: dict[str, Any] = {}

    # --- the interface -----------------------------------------------------------------------
    @property
    @abc.abstractmethod
    def lookback_hours(self) -> int:
        """Hours of history before an issue time that a forecast reads."""

    @abc.abstractmethod
    def fit(self, train: pd.DataFrame, valid: pd.DataFrame | None = None,
            graph: StationGraph | None = None, progress: Progress | None = None,
            warm_start: "Forecaster | None" = None) -> dict[str, Any]:
        """Learn from ``train`` (early stopping on ``valid`` when given); return a training report.

        With ``warm_start`` (a fitted forecaster of the same kind and spec, typically the
        champion) training continues from it instead of starting from scratch: XGBoost adds
        ``warm_start_rounds`` trees to its boosters, the torch models fine-tune its weights for
        ``warm_start_epochs``. ``warm_start`` itself is left untouched. When it cannot be
        continued (another kind or spec, other features or inputs) the fit starts from scratch
        and the report's ``warm_start`` says why.
        """

    @abc.abstractmethod
    def _predict_grid(self, panel: Panel) -> np.ndarray:
        """Predictions for every (hour, station) cell of ``panel`` (NaN where none)."""

    @abc.abstractmethod
    def _save_model(self, directory: Path) -> dict[str, Any]:
        """Write the kind's model files; return extra state for ``forecaster.json``."""

    @abc.abstractmethod
    def _load_model(self, directory: Path, state: dict[str, Any]) -> None:
        """Read back what ``_save_model`` wrote."""

    def predict(self, history: pd.DataFrame) -> pd.DataFrame:
        """One row per forecastable (station, issue time) of ``history``; see the module docstring."""
        if not self.is_fitted:
            raise RuntimeError(f"{self.kind} forecaster is not fitted")
        return self._prediction_frame(Panel.from_frame(history), self._predict_grid)

    def _prediction_frame(self, panel: Panel, predict_grid: Callable[[Panel], np.ndarray]) -> pd.DataFrame:
        """``predict``'s rows for ``panel``, the grid of predictions coming from ``predict_grid(panel)``."""
        if panel.shape[0] == 0 or panel.shape[1] == 0:
            return empty_predictions()
        mask = self.issuable(panel)
        if not mask.any():
            return empty_predictions()
        grid = predict_grid(panel)
        mask &= np.isfinite(grid)
        frame = panel.to_long({"prediction": grid}, mask)
        frame.insert(2, "target_time", frame[TIMESTAMP] + pd.Timedelta(hours=self.spec.horizon_hours))
        return frame.sort_values([TIMESTAMP, STATION], kind="stable").reset_index(drop=True)

    def issuable(self, panel: Panel) -> np.ndarray:
        """``(T, N)`` mask of the cells a forecast is issued for."""
        mask = panel.present & np.isfinite(base_value(panel, self.spec))
        mask[: max(self.lookback_hours, 0)] = False
        return mask

    @property
    def is_fitted(self) -> bool:
        return bool(self.training_report)

    def params(self) -> dict[str, Any]:
        """Flat parameters for MLflow: kind, target, horizon and every hyperparameter."""
        out: dict[str, Any] = {"kind": self.kind, "target": self.spec.target,
                               "horizon_hours": self.spec.horizon_hours,
                               "lookback_hours": self.lookback_hours}
        out.update(self.hyperparams)
        return out

    # --- persistence -------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write the fitted forecaster into ``directory`` (created if needed)."""
        if not self.is_fitted:
            raise RuntimeError(f"{self.kind} forecaster is not fitted")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = self._save_model(directory)
        meta = {
            "kind": self.kind,
            "spec": self.spec.to_dict(),
            "hyperparams": self.hyperparams,
            "training_report": _json_safe(self.training_report),
            "graph": self.graph.to_dict() if self.graph is not None else None,
            "state": state,
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=1))
        return directory

    @classmethod
    def from_saved(cls, directory: str | Path) -> "Forecaster":
        """Read a forecaster of this class written by ``save`` (``factory.read_forecaster`` reads any kind)."""
        directory = Path(directory)
        meta = read_meta(directory)
        if meta["kind"] != cls.kind:
            raise ValueError(f"{directory} holds a {meta['kind']} forecaster, not {cls.kind}")
        forecaster = cls(ForecastSpec.from_dict(meta["spec"]), **meta["hyperparams"])
        forecaster.graph = StationGraph.from_dict(meta["graph"]) if meta.get("graph") else None
        forecaster.training_report = meta["training_report"]
        forecaster._load_model(directory, meta["state"])
        return forecaster

    # --- shared helpers ----------------------------------------------------------------------
    def _training_panel(self, train: pd.DataFrame, valid: pd.DataFrame | None
                        ) -> tuple[Panel, np.ndarray, np.ndarray]:
        """One grid over train and valid, with the issue hours (bool, length T) of each part.

        An hour belongs to a part when both it and its target hour lie in that part's time span.
        """
        frames = self._training_frames(train, valid)
        panel = Panel.from_frame(pd.concat(frames, ignore_index=True) if len(frames) > 1 else train)
        return (panel, *self._part_rows(panel.times, frames))

    def _training_frames(self, train: pd.DataFrame, valid: pd.DataFrame | None) -> list[pd.DataFrame]:
        """``[train]`` or ``[train, valid]`` (when ``valid`` has rows), after checking ``train``."""
        if len(train) == 0:
            raise ValueError(f"{self.kind}: the training frame is empty")
        check_target(train, self.spec.target, f"{self.kind}: the training frame")
        return [train] + ([valid] if valid is not None and len(valid) else [])

    def _part_rows(self, times: pd.DatetimeIndex, frames: list[pd.DataFrame]) -> tuple[np.ndarray, np.ndarray]:
        """The issue hours (bool, one per ``times``) of the train and valid parts (see ``_training_panel``)."""
        h = pd.Timedelta(hours=self.spec.horizon_hours)

        def rows(part: pd.DataFrame) -> np.ndarray:
            return np.asarray((times >= part[TIMESTAMP].min()) & (times + h <= part[TIMESTAMP].max()))

        train_rows = rows(frames[0])
        if len(frames) > 1:
            valid_rows = rows(frames[1])
            train_rows &= ~valid_rows
        else:
            valid_rows = np.zeros(len(times), dtype=bool)
        return train_rows, valid_rows

    def _warm_start_problem(self, champion: "Forecaster") -> str | None:
        """Why ``champion`` cannot be continued by this forecaster (``None`` when it can)."""
        if champion.kind != self.kind:
            return f"the champion is a {champion.kind} model, not {self.kind}"
        if champion.spec != self.spec:
            return f"the champion forecasts {champion.spec}, not {self.spec}"
        if not champion.is_fitted:
            return "the champion is not fitted"
        return None

    def _targets(self, panel: Panel) -> tuple[np.ndarray, np.ndarray]:
        """The target ``horizon_hours`` after each cell and the base (latest observed) value."""
        target = shift(panel[self.spec.target], -self.spec.horizon_hours)
        return target, base_value(panel, self.spec)


def check_target(frame: pd.DataFrame, target: str, what: str) -> None:
    """Raise ``ValueError`` naming the column when ``frame`` has no value of ``target``."""
    if target not in frame.columns:
        measured = [c for c in frame.columns if c not in (STATION, TIMESTAMP)]
        raise ValueError(f"{what} has no column {target!r} (the target); it has {', '.join(map(str, measured))}")
    if not pd.to_numeric(frame[target], errors="coerce").notna().any():
        raise ValueError(f"{what}: the target column {target!r} is empty (no value in {len(frame):,} rows)")


def empty_predictions() -> pd.DataFrame:
    return pd.DataFrame({
        STATION: pd.Series(dtype=object),
        TIMESTAMP: pd.Series(dtype="datetime64[ns]"),
        "target_time": pd.Series(dtype="datetime64[ns]"),
        "prediction": pd.Series(dtype=float),
    })


class Stopwatch:
    """Wall-clock seconds since creation."""

    def __init__(self):
        self.start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else float(value)
    return value


def read_meta(directory: str | Path) -> dict:
    """The description ``save`` wrote beside a forecaster's files (its kind, spec, hyperparameters)."""
    return json.loads((Path(directory) / META_FILE).read_text())
