"""Assembling the training window from stored daily observations, skipping days that failed gates."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import pandas as pd

from aqi_assets.core.data.lake import Lake
from aqi_assets.core.data.schema import STATION, TIMESTAMP, coerce_numeric

OBSERVATIONS = "observations"
QUALITY = "observation_quality"


@dataclass
class WindowReport:
    """What went into a training window and what was left out, day by day."""

    start: date | None
    end: date | None
    days_used: list[date] = field(default_factory=list)
    days_missing: list[date] = field(default_factory=list)
    days_excluded: dict[date, list[str]] = field(default_factory=dict)

    def summary(self) -> str:
        if self.end is None:
            return "no observations stored yet"
        return (f"{len(self.days_used)} day(s) {self.start}..{self.end}; "
                f"{len(self.days_excluded)} excluded by blocking gates; {len(self.days_missing)} not materialized")


def latest_observed_day(lake: Lake) -> date | None:
    days = lake.days(OBSERVATIONS)
    return max(days) if days else None


def day_fit_for_training(lake: Lake, day: date) -> tuple[bool, list[str]]:
    """Whether the stored quality record of ``day`` allows training, and the failed blocking checks."""
    record = lake.read_json(QUALITY, day.isoformat())
    if record is None:
        return True, []
    failed = [c["name"] for c in record.get("checks", []) if c.get("blocking") and not c.get("passed")]
    return not failed, failed


def latest_fit_day(lake: Lake) -> date | None:
    """The newest stored day whose blocking quality checks passed (a failed day never ends a window)."""
    for day in sorted(lake.days(OBSERVATIONS), reverse=True):
        if day_fit_for_training(lake, day)[0]:
            return day
    return None


def training_window(lake: Lake, window_days: int, as_of: date | None = None) -> tuple[pd.DataFrame, WindowReport]:
    """The latest ``window_days`` days up to ``as_of`` (default: the newest day that passed its gates).

    Days whose blocking gates failed are left out (and listed); numeric columns are float64.
    """
    end = as_of or latest_fit_day(lake)
    if end is None:
        return pd.DataFrame(), WindowReport(None, None)
    start = end - timedelta(days=window_days - 1)
    report = WindowReport(start, end)
    stored = set(lake.days(OBSERVATIONS))
    use = []
    for i in range(window_days):
        day = start + timedelta(days=i)
        if day not in stored:
            report.days_missing.append(day)
            continue
        fit, failed = day_fit_for_training(lake, day)
        if fit:
            use.append(day)
        else:
            report.days_excluded[day] = failed
    report.days_used = use
    frame = lake.read_days(OBSERVATIONS, use)
    if len(frame):
        frame = coerce_numeric(frame).sort_values([TIMESTAMP, STATION], ignore_index=True)
    return frame, report
