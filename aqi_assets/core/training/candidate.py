"""Training a candidate on the training window and scoring it beside the champion on one holdout."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date
from typing import Callable

import pandas as pd

from aqi_assets.core.configuration.config import TrainingSettings
from aqi_assets.core.training.forecasting import Forecaster, ForecastSpec, evaluate, make_forecaster, split_window
from aqi_assets.core.training.forecasting.base import check_target
from aqi_assets.core.training.forecasting.split import split_days
from aqi_assets.core.data.schema import TIMESTAMP
from aqi_assets.core.data.station_graph import StationGraph


class TrainingDataError(ValueError):
    """The training window cannot produce a candidate (too few rows or days); not transient."""


@dataclass
class Candidate:
    """A freshly fitted model with its holdout numbers (and the champion's, on the same rows)."""

    model: str
    forecaster: Forecaster
    trained_through: date
    window: dict[str, tuple[str, str]]
    metrics: dict
    fit_report: dict
    train_seconds: float
    train_cpu_seconds: float
    scoring_frame: pd.DataFrame = field(repr=False)
    champion_version: str | None = None
    champion_metrics: dict | None = None
    champion_error: str | None = None

    def record(self) -> dict:
        """The JSON-safe summary the model asset stores and the gates read."""
        return {
            "model": self.model,
            "trained_through": self.trained_through.isoformat(),
            "window": self.window,
            "metrics": self.metrics,
            "champion": None if self.champion_version is None else {
                "version": self.champion_version, "metrics": self.champion_metrics, "error": self.champion_error,
            },
            "fit": self.fit_report,
            "train_seconds": round(self.train_seconds, 2),
            "train_cpu_seconds": round(self.train_cpu_seconds, 2),
            "hyperparams": self.forecaster.params(),
        }


def train_candidate(model: str, dataset: pd.DataFrame, graph: StationGraph | None, settings: TrainingSettings,
                    progress: Callable[[str], None] | None = None, warm_start: Forecaster | None = None,
                    **hyperparams) -> Candidate:
    """Fit ``model`` on the train/valid parts of the window and score it on the holdout.

    With ``warm_start`` (the champion) the fit continues from it (``Forecaster.fit``)."""
    if dataset.empty:
        raise TrainingDataError("the training dataset is empty")
    try:
        check_target(dataset, settings.target, "the training dataset")
    except ValueError as exc:
        raise TrainingDataError(str(exc)) from exc
    end = pd.to_datetime(dataset[TIMESTAMP]).max().date()
    parts = split_days(settings, end)
    train, valid, holdout = split_window(dataset, settings, end)
    for name, part in (("train", train), ("validation", valid), ("holdout", holdout)):
        if part.empty:
            first, last = parts["holdout" if name == "holdout" else "valid" if name == "validation" else "train"]
            raise TrainingDataError(f"the {name} slice {first}..{last} of the training window has no rows")
    spec = ForecastSpec(target=settings.target, horizon_hours=settings.horizon_hours)
    forecaster = make_forecaster(model, spec, preset=settings.preset, **hyperparams)
    wall, cpu = time.perf_counter(), time.process_time()
    report = forecaster.fit(train, valid, graph, progress=progress, warm_start=warm_start)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    scoring = pd.concat([valid, holdout], ignore_index=True)
    first, last = parts["holdout"]
    metrics = evaluate(forecaster, scoring, first, last)
    if not metrics.get("n"):
        raise TrainingDataError(f"the holdout {first}..{last} produced no scorable forecasts")
    return Candidate(
        model=model, forecaster=forecaster, trained_through=end,
        window={k: (a.isoformat(), b.isoformat()) for k, (a, b) in parts.items()},
        metrics=metrics, fit_report=report, train_seconds=wall, train_cpu_seconds=cpu, scoring_frame=scoring,
    )


def score_champion(candidate: Candidate, champion: Forecaster, version: str) -> None:
    """Score the serving model on exactly the candidate's holdout rows (stored on the candidate)."""
    first, last = (date.fromisoformat(d) for d in candidate.window["holdout"])
    candidate.champion_version = str(version)
    candidate.champion_metrics = evaluate(champion, candidate.scoring_frame, first, last)
