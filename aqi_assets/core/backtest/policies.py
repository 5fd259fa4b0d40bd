"""Retraining policies a backtest replays, by name, and the decision each takes at the end of a day.

| name | retrains |
|---|---|
| ``never`` | never: the initial model serves the whole replay |
| ``fixed_<N>`` | every ``N`` days (``schedule.schedule_due``: a model serves exactly ``N`` days) |
| ``seed_raw`` | on the original rule: ``rule="raw"`` with the seed's thresholds and windows (``SEED_RAW_OVERRIDES``) |
| ``default`` | on ``RetrainingConfig().performance`` — whatever the product ships |
| ``drift`` | on input drift only (``check_drift`` on ``feature_stats`` sketches, ``config.drift``) |
| ``default+drift`` | on either the default performance rule or drift |
| ``schedule`` | on the adaptive schedule alone (``config.schedule``: a 60-day backstop, adapted daily within 30..90 days from the performance score) |
| ``deployed`` | what the platform runs: the adaptive schedule ∪ the default performance rule ∪ drift, any of them retrains |

A triggered name may carry overrides of its performance settings after a colon, joined by
``+``: ``default:rmse_increase=0.1+cooldown_days=7`` (any ``PerformanceSettings`` field);
``+every=<N>`` adds a fixed schedule as a fallback. Any name may end in ``+warm``
(``fixed_14+warm``, ``default+warm``): the same decisions, but each retrain continues the
serving model (``fit(..., warm_start=serving)``, as ``training.warm_start`` does live) instead
of training from scratch. Every policy decides with the platform's
own rule code: ``evaluate_performance`` for performance, ``DriftReport.triggers`` for drift and
``schedule_due`` for schedules.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import date, timedelta

import pandas as pd

from aqi_assets.core.configuration.config import DriftSettings, PerformanceSettings, RetrainingConfig, ScheduleSettings
from aqi_assets.core.monitoring.drift import DriftState, check_drift
from aqi_assets.core.monitoring.schedule import adapt_interval, base_interval, schedule_due
from aqi_assets.core.monitoring.triggers import Trigger, evaluate_performance, performance_score

#: Settings of the original (seed) performance rule: raw RMSE and within-20 %, seed thresholds,
#: and the windows it shipped with (7-day recent window, 14-day reference, 3-day cooldown), so
#: ``seed_raw`` stays the seed's rule whatever the product's defaults become.
SEED_RAW_OVERRIDES: dict[str, object] = {
    "rule": "raw", "rmse_increase": 0.15, "accuracy_drop": 0.10,
    "critical_rmse_increase": 0.30, "critical_accuracy_drop": 0.20,
    "recent_days": 7, "min_recent_days": 5, "reference_days": 14, "min_reference_days": 7, "cooldown_days": 3,
}  # fmt: skip
TRIGGERED_BASES: tuple[str, ...] = ("seed_raw", "default", "drift", "default+drift", "schedule", "deployed")
#: The name suffix of a policy that retrains warm (continues the serving model).
WARM_SUFFIX = "+warm"
_FIXED = re.compile(r"^fixed_(\d+)$")


@dataclass(frozen=True)
class Policy:
    """When to retrain: on a fixed interval, on performance triggers, on drift, or any of these.

    No interval and no rules means never. ``model`` is the name rules and scores use.
    """

    name: str
    interval_days: int | None = None
    performance: PerformanceSettings | None = None
    drift: DriftSettings | None = None
    model: str = "xgboost"
    #: The adaptive schedule (interval adapted daily from the performance score, as deployed).
    schedule: ScheduleSettings | None = None
    #: Performance settings the adaptive schedule's score is computed with.
    score_with: PerformanceSettings | None = None
    #: Retrain warm: continue the serving model instead of training from scratch.
    warm: bool = False

    def __post_init__(self):
        if self.interval_days is not None and self.interval_days < 1:
            raise ValueError(f"policy {self.name!r}: interval_days must be ≥ 1, got {self.interval_days}")

    @property
    def kind(self) -> str:
        """``never``, ``fixed`` (a schedule only) or ``triggered`` (performance or drift rules)."""
        if self.performance is not None or self.drift is not None:
            return "triggered"
        if self.schedule is not None:
            return "adaptive"
        return "fixed" if self.interval_days is not None else "never"

    def describe(self) -> dict:
        """The policy's settings as plain values (what the JSON report records)."""
        return {
            "kind": self.kind,
            "interval_days": self.interval_days,
            "performance": None if self.performance is None else self.performance.model_dump(),
            "drift": None if self.drift is None else self.drift.model_dump(),
            "schedule": None if self.schedule is None else self.schedule.model_dump(),
            "warm_start": self.warm,
        }


def policy_from_name(name: str, config: RetrainingConfig | None = None) -> Policy:
    """The policy a name stands for (see the module table); a ValueError lists the valid names."""
    config = config or RetrainingConfig()
    name = name.strip()
    if name.endswith(WARM_SUFFIX):
        base = policy_from_name(name[: -len(WARM_SUFFIX)], config)
        if base.kind == "never":
            raise ValueError(f"policy {name!r}: never retrains, so it cannot retrain warm")
        return dataclasses.replace(base, name=name, warm=True)
    if name == "never":
        return Policy(name)
    fixed = _FIXED.match(name)
    if fixed:
        return Policy(name, interval_days=int(fixed.group(1)))
    base, _, overrides = name.partition(":")
    if base not in TRIGGERED_BASES:
        raise ValueError(
            f"unknown policy {name!r}: expected never, fixed_<days>, {', '.join(TRIGGERED_BASES)} "
            "(triggered names may add ':key=value+key=value'; any may end in '+warm')"
        )
    edits = _parse_overrides(name, overrides)
    interval = edits.pop("every", None)
    performance: PerformanceSettings | None = None
    if base == "seed_raw":
        performance = _performance(name, config.performance, {**SEED_RAW_OVERRIDES, **edits})
    elif base in ("default", "default+drift"):
        performance = _performance(name, config.performance, edits) if edits else config.performance
    elif edits:
        raise ValueError(f"policy {name!r}: the drift policy takes no performance settings")
    if base in ("schedule", "deployed"):
        if edits:
            raise ValueError(f"policy {name!r}: the {base} policy takes no settings")
        deployed = base == "deployed"
        return Policy(name, performance=config.performance if deployed else None,
                      drift=config.drift_in_force() if deployed else None, schedule=config.schedule,
                      score_with=config.performance)
    drift = config.drift_in_force() if base in ("drift", "default+drift") else None
    return Policy(name, interval_days=None if interval is None else int(interval), performance=performance,
                  drift=drift)


def policies_from_names(names: str | list[str], config: RetrainingConfig | None = None) -> list[Policy]:
    """Policies from a comma-separated string or a list of names; duplicate names are an error."""
    if isinstance(names, str):
        names = [n for n in (part.strip() for part in names.split(",")) if n]
    if not names:
        raise ValueError("no policies given")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"policies named twice: {duplicates}")
    return [policy_from_name(n, config) for n in names]


def _parse_overrides(name: str, text: str) -> dict[str, object]:
    edits: dict[str, object] = {}
    for item in filter(None, (part.strip() for part in text.split("+"))):
        key, eq, value = (part.strip() for part in item.partition("="))
        if not eq or not key:
            raise ValueError(f"policy {name!r}: {item!r} is not key=value")
        edits[key] = value
    return edits


def _performance(name: str, base: PerformanceSettings, edits: dict[str, object]) -> PerformanceSettings:
    unknown = sorted(set(edits) - set(PerformanceSettings.model_fields))
    if unknown:
        raise ValueError(f"policy {name!r}: unknown performance setting(s) {unknown}")
    try:
        return PerformanceSettings.model_validate({**base.model_dump(), **edits})
    except ValueError as exc:
        raise ValueError(f"policy {name!r}: {exc}") from exc


@dataclass
class PolicyState:
    """Where one policy stands on a replay day: its serving model and its last triggers."""

    trained_through: date
    last_performance_trigger: date | None = None
    drift: DriftState = field(default_factory=DriftState)
    #: The adaptive schedule's interval in force (``None`` until the first decision).
    interval_days: int | None = None

    @property
    def last_drift_trigger(self) -> date | None:
        return self.drift.last_trigger

    @property
    def deployed_on(self) -> date:
        """The first day the serving model served (the day after its training window ends)."""
        return self.trained_through + timedelta(days=1)


def decide(
    policy: Policy,
    state: PolicyState,
    today: date,
    scores: pd.DataFrame,
    feature_stats: pd.DataFrame | None = None,
) -> list[Trigger]:
    """The triggers ``policy`` raises at the end of ``today`` (empty: keep the serving model).

    ``scores`` are the serving model's daily rows (``PERFORMANCE_COLUMNS``) since it was deployed;
    ``feature_stats`` the daily sketches up to ``today`` (needed only by drift rules). Updates the
    state's last-trigger days; the caller retrains when the list is not empty.
    """
    triggers: list[Trigger] = []
    if policy.schedule is not None:  # the daily adaptation, then the schedule sensor
        if state.interval_days is None:
            state.interval_days = base_interval(policy.model, policy.schedule)
        score = performance_score(scores, policy.model, state.deployed_on, policy.score_with or PerformanceSettings(),
                                  today) if len(scores) else None
        state.interval_days = adapt_interval(state.interval_days, score, policy.schedule)
        due = schedule_due(state.trained_through, state.interval_days, today, model=policy.model)
        if due is not None:
            triggers.append(due)
    if policy.interval_days is not None:
        due = schedule_due(state.trained_through, policy.interval_days, today, model=policy.model)
        if due is not None:
            triggers.append(due)
    if policy.performance is not None:
        found = evaluate_performance(scores, policy.model, state.deployed_on, policy.performance, today,
                                     last_triggered_on=state.last_performance_trigger)
        if found:
            state.last_performance_trigger = today
            triggers.extend(found)
    if policy.drift is not None:
        if feature_stats is None:
            raise ValueError(f"policy {policy.name!r} needs feature_stats for its drift rule")
        report = check_drift(feature_stats, today, policy.drift, state.drift)
        found = [] if report is None else report.triggers(last_triggered_on=state.drift.last_trigger)
        if found:  # the replay retrains on every trigger, so each one is requested
            state.drift = state.drift.fired(report)
            triggers.extend(found)
    return triggers
