"""Scheduled retraining: each model's interval, its daily adaptation from a score, and when it is due.

Adaptation (run daily, ``ScheduleSettings.adapt_cron``, 03:00 by default) follows the table:

| performance score | new interval |
|---|---|
| < ``low_score`` (0.7) | days × 0.7, at least ``min_days`` (30; the seed's 3) |
| > ``high_score`` (0.9) | days × 1.3, at most ``max_days`` (90; the seed's 30) |
| otherwise (or no score) | unchanged |

The shipped interval is a 60-day backstop: the performance and drift sensors decide when to
retrain, and the schedule retrains a model nothing flagged. Its floor of 30 days keeps a falling
score (which the performance sensor acts on) from shrinking it daily into a second trigger.
The product is rounded half up (7 × 0.7 = 4.9 → 5, 7 × 1.3 = 9.1 → 9, 5 × 0.7 = 3.5 → 4). A low
score never lengthens an interval and a high score never shortens it, so an interval configured
outside [min_days, max_days] is not pushed the wrong way by the bounds.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

from aqi_assets.core.configuration.config import ScheduleSettings
from aqi_assets.core.monitoring.triggers import Trigger, check_model


def base_interval(model: str, settings: ScheduleSettings) -> int:
    """The configured interval of ``model`` in days (before any adaptation)."""
    check_model(model)
    if model not in settings.days:
        raise ValueError(f"no schedule configured for model {model!r}; configured: {sorted(settings.days)}")
    return settings.days[model]


def _round_half_up(value: float) -> int:
    # Round to 9 decimals first so 5 × 0.7 (3.4999999999999996 in binary) counts as 3.5.
    return math.floor(round(value, 9) + 0.5)


def adapt_interval(current_days: int, score: float | None, settings: ScheduleSettings) -> int:
    """The next interval in days for a model retrained every ``current_days`` with ``score``."""
    if current_days < 1:
        raise ValueError(f"current_days must be ≥ 1, got {current_days}")
    if score is None or math.isnan(score):
        return current_days
    if score < settings.low_score:
        return min(current_days, max(settings.min_days, _round_half_up(current_days * settings.shrink_factor)))
    if score > settings.high_score:
        return max(current_days, min(settings.max_days, _round_half_up(current_days * settings.grow_factor)))
    return current_days


def schedule_due(
    last_trained_on: date | None, interval_days: int, today: date, *, model: str, at: datetime | None = None
) -> Trigger | None:
    """A low-severity schedule trigger when ``interval_days`` have passed since the last training.

    A model never trained is due at once. The key names ``today``, so repeated ticks on one day
    launch one run, and a failed scheduled run is retried the next day.
    """
    check_model(model)
    if interval_days < 1:
        raise ValueError(f"interval_days must be ≥ 1, got {interval_days}")
    at = at or datetime.combine(today, datetime.min.time())
    if last_trained_on is None:
        reason = f"{model} has never been trained; its schedule is every {interval_days} days"
        evidence = {"last_trained_on": None, "interval_days": interval_days, "days_since": None}
        return Trigger(model, "schedule", "low", reason, evidence, at, (today, today))
    days_since = (today - last_trained_on).days
    if days_since < interval_days:
        return None
    due_on = last_trained_on + timedelta(days=interval_days)
    reason = (
        f"{model} was last trained on {last_trained_on} ({days_since} days ago); "
        f"its schedule is every {interval_days} days (due {due_on})"
    )
    evidence = {
        "last_trained_on": last_trained_on.isoformat(),
        "interval_days": interval_days,
        "days_since": days_since,
        "due_on": due_on.isoformat(),
    }
    return Trigger(model, "schedule", "low", reason, evidence, at, (today, today))
