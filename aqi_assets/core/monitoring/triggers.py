"""Retraining triggers: the ``Trigger`` record, the live-performance rules and manual triggers.

A trigger says which model should be retrained, why (``trigger_type``: performance, drift,
schedule or manual), how urgently (``severity``), in one sentence with the numbers (``reason``)
and with the numbers themselves (``evidence``). Drift triggers come from ``drift.DriftReport``,
schedule triggers from ``schedule.schedule_due``; this module holds the performance rules.

Performance rules compare a model's live error over the last ``recent_days`` with its own
error over the ``reference_days`` right after its champion started serving:

- ``rule="raw"`` (default; the original rule): pooled RMSE and accuracy-within-20 % as
  measured. On the Beijing backtest it served better than ``skill`` (``make bench-policies``).
- ``rule="skill"``: the same thresholds on the model's error *relative to
  persistence on the same days* — RMSE / persistence RMSE and within-20 % / persistence
  within-20 %. Weather and season move both numerators and denominators, so a winter rise in
  raw RMSE that persistence shares does not read as the model going stale.

RMSE up by more than ``rmse_increase`` (15 %) or within-20 % down by more than
``accuracy_drop`` (10 %, relative) is *high*; +30 % / −20 % is *critical*.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from aqi_assets.core.configuration.config import MODEL_NAMES, PerformanceSettings

TRIGGER_TYPES: tuple[str, ...] = ("performance", "drift", "schedule", "manual")
SEVERITIES: tuple[str, ...] = ("low", "medium", "high", "critical")
ALL_MODELS = "*"
REASON_TAG_CHARS = 200

#: Columns of the daily live-score table ``evaluate_performance`` reads (one row per model/day).
PERFORMANCE_COLUMNS: tuple[str, ...] = (
    "date", "model", "rmse", "mae", "within_20", "aqi_category_accuracy", "n",
    "persistence_rmse", "persistence_mae", "persistence_within_20",
)  # fmt: skip


@dataclass(frozen=True)
class Trigger:
    """One reason to retrain one model (``model == "*"``: a data-level reason for every model).

    ``window`` is the (first, last) day the trigger concerns; with the type and model it makes
    ``key``, the dedup key a sensor uses as its run key, so the same finding never launches
    twice on repeated ticks.
    """

    model: str
    trigger_type: str
    severity: str
    reason: str
    evidence: dict[str, Any] = field(compare=False)
    at: datetime
    window: tuple[date, date] | None = None

    def __post_init__(self):
        if self.trigger_type not in TRIGGER_TYPES:
            raise ValueError(f"trigger_type {self.trigger_type!r} is not one of {list(TRIGGER_TYPES)}")
        check_severity(self.severity)
        check_model(self.model)

    @property
    def key(self) -> str:
        """``type/model/first..last`` of the window (manual triggers: their timestamp)."""
        if self.window is None:
            return f"{self.trigger_type}/{self.model}/{self.at.isoformat(timespec='seconds')}"
        first, last = self.window
        return f"{self.trigger_type}/{self.model}/{first.isoformat()}..{last.isoformat()}"

    @property
    def rank(self) -> int:
        """Severity as 0 (low) .. 3 (critical), for ordering."""
        return SEVERITIES.index(self.severity)

    def tags(self) -> dict[str, str]:
        """Run tags that say why a run was requested (reason cut to 200 characters)."""
        reason = self.reason
        if len(reason) > REASON_TAG_CHARS:
            reason = reason[: REASON_TAG_CHARS - 1] + "…"
        return {
            "aqi/trigger_type": self.trigger_type,
            "aqi/severity": self.severity,
            "aqi/reason": reason,
            "aqi/model": self.model,
        }


def check_severity(severity: str) -> str:
    """``severity`` if it is one of ``SEVERITIES``; otherwise a ValueError naming it."""
    if severity not in SEVERITIES:
        raise ValueError(f"severity {severity!r} is not one of {list(SEVERITIES)}")
    return severity


def check_model(model: str) -> str:
    """``model`` if it is a known model name or ``"*"``; otherwise a ValueError naming it."""
    if model != ALL_MODELS and model not in MODEL_NAMES:
        raise ValueError(f"model {model!r} is not one of {list(MODEL_NAMES)} (or '*' for all)")
    return model


def manual_trigger(model: str, reason: str, severity: str = "medium", at: datetime | None = None) -> Trigger:
    """A retraining requested by a person; model, severity and a non-empty reason are checked."""
    check_model(model)
    check_severity(severity)
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError("reason must be a non-empty sentence saying why the model is retrained")
    at = at or datetime.now()
    return Trigger(model, "manual", severity, reason.strip(), {"requested_by": "manual"}, at)


@dataclass(frozen=True)
class PerformanceLevels:
    """A model's pooled live error in its reference and recent windows (``rule`` quantities).

    ``error_*`` is RMSE (raw rule) or RMSE / persistence RMSE (skill rule); ``accuracy_*`` is
    within-20 % (raw) or within-20 % / persistence within-20 % (skill).
    """

    rule: str
    reference: tuple[date, date]
    recent: tuple[date, date]
    reference_days: int
    recent_days: int
    error_reference: float
    error_recent: float
    accuracy_reference: float
    accuracy_recent: float

    @property
    def error_increase(self) -> float:
        """Relative rise of the error measure (0.2 = 20 % worse)."""
        return self.error_recent / self.error_reference - 1.0

    @property
    def accuracy_drop(self) -> float:
        """Relative fall of the accuracy measure (0.1 = 10 % lower)."""
        return 1.0 - self.accuracy_recent / self.accuracy_reference


def performance_levels(
    history: pd.DataFrame, model: str, deployed_on: date, settings: PerformanceSettings, today: date
) -> PerformanceLevels | None:
    """Pooled reference and recent levels, or ``None`` if either window has too few scored days.

    Reference: the ``reference_days`` from ``deployed_on``; recent: the ``recent_days`` ending
    ``today``. The windows may not overlap; each needs ``min_reference_days`` /
    ``min_recent_days`` days with scores. Days pool by forecast count: RMSE as
    sqrt(Σ n·rmse² / Σ n), within-20 % as Σ n·share / Σ n.
    """
    rows = history[history["model"] == model]
    if rows.empty:
        return None
    days = pd.to_datetime(rows["date"]).dt.date
    ref_first = deployed_on
    ref_last = deployed_on + timedelta(days=settings.reference_days - 1)
    recent_first = max(today - timedelta(days=settings.recent_days - 1), ref_last + timedelta(days=1))
    if recent_first > today:
        return None
    ref = rows[(days >= ref_first) & (days <= ref_last)]
    recent = rows[(days >= recent_first) & (days <= today)]
    ref = ref[ref["n"] > 0].dropna(subset=["rmse", "within_20"])
    recent = recent[recent["n"] > 0].dropna(subset=["rmse", "within_20"])
    if ref["date"].nunique() < settings.min_reference_days or recent["date"].nunique() < settings.min_recent_days:
        return None
    err_ref, acc_ref = _pooled(ref, settings.rule)
    err_rec, acc_rec = _pooled(recent, settings.rule)
    if not (err_ref > 0 and acc_ref > 0 and np.isfinite(err_rec) and np.isfinite(acc_rec)):
        return None
    return PerformanceLevels(
        rule=settings.rule,
        reference=(ref_first, ref_last),
        recent=(recent_first, today),
        reference_days=int(ref["date"].nunique()),
        recent_days=int(recent["date"].nunique()),
        error_reference=err_ref,
        error_recent=err_rec,
        accuracy_reference=acc_ref,
        accuracy_recent=acc_rec,
    )


def _pooled(rows: pd.DataFrame, rule: str) -> tuple[float, float]:
    n = rows["n"].to_numpy(dtype=float)
    rmse = math.sqrt(np.sum(n * rows["rmse"].to_numpy(dtype=float) ** 2) / n.sum())
    within = float(np.sum(n * rows["within_20"].to_numpy(dtype=float)) / n.sum())
    if rule == "raw":
        return rmse, within
    p_rmse = math.sqrt(np.sum(n * rows["persistence_rmse"].to_numpy(dtype=float) ** 2) / n.sum())
    p_within = float(np.sum(n * rows["persistence_within_20"].to_numpy(dtype=float)) / n.sum())
    return rmse / p_rmse if p_rmse > 0 else math.nan, within / p_within if p_within > 0 else math.nan


def evaluate_performance(
    history: pd.DataFrame,
    model: str,
    deployed_on: date,
    settings: PerformanceSettings,
    today: date,
    last_triggered_on: date | None = None,
    at: datetime | None = None,
) -> list[Trigger]:
    """At most one performance trigger for ``model``: critical, high, or none.

    ``history`` has ``PERFORMANCE_COLUMNS`` (other models' rows are ignored). No trigger when
    either window lacks scored days, or within ``cooldown_days`` after ``last_triggered_on``.
    """
    check_model(model)
    if last_triggered_on is not None and (today - last_triggered_on).days < settings.cooldown_days:
        return []
    levels = performance_levels(history, model, deployed_on, settings, today)
    if levels is None:
        return []
    rise, drop = levels.error_increase, levels.accuracy_drop
    if rise > settings.critical_rmse_increase or drop > settings.critical_accuracy_drop:
        severity = "critical"
    elif rise > settings.rmse_increase or drop > settings.accuracy_drop:
        severity = "high"
    else:
        return []
    measure = "RMSE" if levels.rule == "raw" else "RMSE relative to persistence"
    accuracy = "within-20 %" if levels.rule == "raw" else "within-20 % relative to persistence"
    reason = (
        f"{model} {measure} {levels.error_recent:.3g} over {levels.recent[0]}..{levels.recent[1]} is "
        f"{rise:+.0%} against {levels.error_reference:.3g} after deployment; {accuracy} "
        f"{levels.accuracy_recent:.3g} vs {levels.accuracy_reference:.3g} ({-drop:+.0%})"
    )
    evidence = {
        "rule": levels.rule,
        "reference_window": [levels.reference[0].isoformat(), levels.reference[1].isoformat()],
        "recent_window": [levels.recent[0].isoformat(), levels.recent[1].isoformat()],
        "error_reference": levels.error_reference,
        "error_recent": levels.error_recent,
        "error_increase": rise,
        "accuracy_reference": levels.accuracy_reference,
        "accuracy_recent": levels.accuracy_recent,
        "accuracy_drop": drop,
        "reference_days": levels.reference_days,
        "recent_days": levels.recent_days,
    }
    at = at or datetime.combine(today, datetime.min.time())
    return [Trigger(model, "performance", severity, reason, evidence, at, levels.recent)]


def performance_score(
    history: pd.DataFrame, model: str, deployed_on: date, settings: PerformanceSettings, today: date
) -> float | None:
    """0..1: how well ``model`` holds the accuracy it had when deployed (``None``: too few days).

    The worse of two ratios, each capped at 1: reference error / recent error, and recent
    accuracy / reference accuracy, in the quantities of ``settings.rule`` (relative to
    persistence by default). 1.0 = as good as right after deployment; 0.87 ≈ the error 15 %
    higher (the high trigger); below 0.7 = error up by more than 43 % or accuracy down by 30 %.
    """
    levels = performance_levels(history, model, deployed_on, settings, today)
    if levels is None:
        return None
    error_part = levels.error_reference / levels.error_recent if levels.error_recent > 0 else 1.0
    accuracy_part = levels.accuracy_recent / levels.accuracy_reference
    return float(np.clip(min(error_part, accuracy_part), 0.0, 1.0))
