"""What would fire now: performance, drift and schedule triggers evaluated on the stored state.

The sensors, the ``check`` command, the demo and the tests all call these, so a decision is
made the same way everywhere. State kept between evaluations (when each model last triggered)
is passed in and returned, never hidden.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING

import pandas as pd

from aqi_assets.core.configuration.config import MODEL_NAMES, RetrainingConfig
from aqi_assets.core.data.lake import Lake
from aqi_assets.core.monitoring.live_scoring import performance_history
from aqi_assets.core.monitoring.schedule import adapt_interval, base_interval, schedule_due
from aqi_assets.core.monitoring.triggers import Trigger, evaluate_performance, performance_score

if TYPE_CHECKING:  # drift statistics need scipy, imported when drift is checked, not at load
    from aqi_assets.core.monitoring.drift import DriftReport, DriftState

FEATURE_STATS = "feature_stats"
SCHEDULE_DATASET = "retraining_schedule"


def _day(value) -> date:
    return pd.Timestamp(value).date()


@dataclass
class PerformanceCheck:
    """The triggers found and, per model, the version scored, since when, and its score."""

    today: date | None
    triggers: list[Trigger] = field(default_factory=list)
    models: dict[str, dict] = field(default_factory=dict)


def serving_rows(history: pd.DataFrame, model: str) -> tuple[pd.DataFrame, date | None]:
    """Score rows of the version serving now (the latest scored) and the day it started serving.

    Rows dated before that day (a backfill scoring days inside the model's training window) are
    left out: they are in-sample and would flatter the reference the triggers compare against.
    """
    rows = history[history["model"] == model]
    if rows.empty:
        return rows, None
    version = rows["champion_version"].iloc[-1]
    rows = rows[rows["champion_version"] == version]
    since = rows["serving_since"].iloc[-1]
    if not since:
        return rows, _day(rows["date"].min())
    start = date.fromisoformat(since)
    return rows[pd.to_datetime(rows["date"]).dt.date >= start], start


def check_performance(lake: Lake, config: RetrainingConfig, last_triggered: dict[str, str] | None = None
                      ) -> PerformanceCheck:
    """Degradation triggers of every serving model on its stored daily scores."""
    history = performance_history(lake)
    if history.empty:
        return PerformanceCheck(None)
    today = _day(history["date"].max())
    check = PerformanceCheck(today)
    last_triggered = last_triggered or {}
    for model in MODEL_NAMES:
        rows, deployed_on = serving_rows(history, model)
        if rows.empty:
            continue
        last = last_triggered.get(model)
        found = evaluate_performance(rows, model, deployed_on, config.performance, today,
                                     last_triggered_on=date.fromisoformat(last) if last else None)
        check.triggers += found
        check.models[model] = {
            "version": str(rows["champion_version"].iloc[-1]), "serving_since": deployed_on.isoformat(),
            "days_scored": int(len(rows)), "recent_rmse": float(rows["rmse"].tail(config.performance.recent_days).mean()),
            "score": performance_score(rows, model, deployed_on, config.performance, today),
        }
    return check


def check_drift(lake: Lake, config: RetrainingConfig, state: DriftState | None = None,
                as_of: date | None = None) -> tuple[DriftReport | None, list[Trigger]]:
    """The drift report of the latest ``current_days`` of sketches and the trigger it makes.

    ``drift.check_drift`` (the one the backtest replays) reading only the days it needs;
    ``state`` holds the last requested trigger (cooldown) and the pairs whose reference restarted.
    """
    from aqi_assets.core.monitoring import drift  # scipy: imported when drift is checked, not at load

    days = lake.days(FEATURE_STATS)
    if not days:
        return None, []
    state = state or drift.DriftState()
    report = drift.check_drift(lambda wanted: lake.read_days(FEATURE_STATS, wanted), as_of or max(days),
                               config.drift_in_force(), state, available=days)
    if report is None:
        return None, []
    return report, report.triggers(last_triggered_on=state.last_trigger)


def schedule_state(lake: Lake) -> dict:
    """The adaptive schedule in force: per model ``interval_days``, ``last_trained_on``, ``next_due``."""
    return lake.read_json(SCHEDULE_DATASET) or {}


def last_trained_on(lake: Lake, model: str) -> date | None:
    """The data day the model's latest training attempt ended on (successful or not)."""
    record = lake.read_json(f"{model}_model")
    return date.fromisoformat(record["trained_through"]) if record else None


def adapt_schedule(lake: Lake, config: RetrainingConfig, today: date) -> dict:
    """The schedule after today's adaptation (the 03:00 update): intervals from performance scores.

    An interval starts at the configured days (and restarts there when those change), then
    shrinks or grows with the model's performance score as the defaults table says.
    """
    previous = schedule_state(lake).get("models", {})
    check = check_performance(lake, config)
    models = {}
    for model in MODEL_NAMES:
        configured = base_interval(model, config.schedule)
        before = previous.get(model, {})
        current = before.get("interval_days", configured) if before.get("configured_days") == configured else configured
        score = check.models.get(model, {}).get("score")
        interval = adapt_interval(current, score, config.schedule)
        trained = last_trained_on(lake, model)
        models[model] = {
            "configured_days": configured, "previous_interval_days": current, "interval_days": interval,
            "score": score, "performance_weight": score, "last_trained_on": trained.isoformat() if trained else None,
            "next_due": (trained + timedelta(days=interval)).isoformat() if trained else today.isoformat(),
            "last_updated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
    return {"as_of": today.isoformat(), "models": models}


def due_triggers(lake: Lake, today: date) -> list[Trigger]:
    """Schedule triggers of models whose interval has passed since their last training."""
    state = schedule_state(lake).get("models", {})
    found = []
    for model in MODEL_NAMES:
        entry = state.get(model)
        if entry is None:
            continue
        trained = last_trained_on(lake, model)
        trigger = schedule_due(trained, int(entry["interval_days"]), today, model=model)
        if trigger is not None:
            found.append(trigger)
    return found
