"""Data-quality checks on one day of observations: each failure names column, station and rows.

Validation only reads: it never drops, fills or rewrites a value. ``validate_day`` returns one
``CheckOutcome`` per check; blocking checks that fail mark the day unfit for training (the raw
rows are kept as received and the outcome is stored beside them).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd

from aqi_assets.core.schema import (
    COMPASS_POINTS,
    NUMERIC_COLUMNS,
    OBSERVATION_COLUMNS,
    PHYSICAL_RANGES,
    POLLUTANTS,
    STATION,
    TIMESTAMP,
    WIND_DIRECTION,
)

MAX_LISTED_ROWS = 5


@dataclass(frozen=True)
class Problem:
    """One fault: which column and station, how many rows, the first few of them, and what."""

    column: str | None
    station: str | None
    count: int
    rows: tuple[str, ...]
    detail: str

    def describe(self) -> str:
        where = ", ".join(
            p for p in (f"column {self.column}" if self.column else "",
                        f"station {self.station}" if self.station else "") if p
        )
        rows = f" at {', '.join(self.rows)}{' …' if self.count > len(self.rows) else ''}" if self.rows else ""
        return f"{where + ': ' if where else ''}{self.detail} ({self.count} row(s){rows})"


@dataclass(frozen=True)
class CheckOutcome:
    """The result of one named check on one day."""

    name: str
    blocking: bool
    passed: bool
    description: str
    problems: tuple[Problem, ...] = ()
    figures: dict = field(default_factory=dict)

    @property
    def summary(self) -> str:
        if self.passed:
            return f"{self.name}: passed"
        head = "; ".join(p.describe() for p in self.problems[:3])
        more = f"; and {len(self.problems) - 3} more" if len(self.problems) > 3 else ""
        return f"{self.name}: {head}{more}"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class QualityThresholds:
    """Missing-data limits: above ``max_missing_share`` overall or for the target, the day blocks."""

    max_missing_share: float = 0.5
    max_target_missing_share: float = 0.5
    warn_column_missing_share: float = 0.5
    target: str = "pm25"


CHECK_DESCRIPTIONS: dict[str, tuple[bool, str]] = {
    "schema_matches": (True, "Every canonical column is present with its dtype; numbers parse, wind directions are compass points."),
    "values_physically_possible": (True, "No negative concentrations; weather values within physical ranges."),
    "no_duplicate_rows": (True, "At most one row per (station, timestamp)."),
    "timestamps_within_partition": (True, "Every timestamp falls on the partition's day, on the hour."),
    "stations_match_network": (True, "Every expected station reports 24 hours; no unknown station appears."),
    "missing_share_within_limit": (True, "Missing readings overall and of the target stay under the limit."),
}


def _rows_of(frame: pd.DataFrame, mask: np.ndarray) -> tuple[str, ...]:
    if TIMESTAMP in frame.columns and pd.api.types.is_datetime64_any_dtype(frame[TIMESTAMP]):
        stamps = frame.loc[mask, TIMESTAMP].head(MAX_LISTED_ROWS)
        return tuple("NaT" if pd.isna(t) else f"{t:%Y-%m-%d %H:%M}" for t in stamps)
    return tuple(f"row {i}" for i in np.flatnonzero(mask)[:MAX_LISTED_ROWS])


def _by_station(frame: pd.DataFrame, mask: np.ndarray, column: str | None, detail: str) -> list[Problem]:
    """One Problem per station among the rows selected by ``mask``."""
    if not mask.any():
        return []
    stations = frame[STATION].astype(str).to_numpy() if STATION in frame.columns else np.full(len(frame), "?")
    problems = []
    for station in sorted(set(stations[mask])):
        sel = mask & (stations == station)
        problems.append(Problem(column, station, int(sel.sum()), _rows_of(frame, sel), detail))
    return problems


def _outcome(name: str, problems: list[Problem], figures: dict | None = None, blocking: bool | None = None) -> CheckOutcome:
    default_blocking, description = CHECK_DESCRIPTIONS[name]
    return CheckOutcome(
        name=name, blocking=default_blocking if blocking is None else blocking,
        passed=not problems, description=description, problems=tuple(problems), figures=figures or {},
    )


def check_schema(frame: pd.DataFrame) -> CheckOutcome:
    problems: list[Problem] = []
    missing = [c for c in OBSERVATION_COLUMNS if c not in frame.columns]
    for column in missing:
        problems.append(Problem(column, None, len(frame), (), "required column is missing"))
    if TIMESTAMP in frame.columns and not pd.api.types.is_datetime64_any_dtype(frame[TIMESTAMP]):
        problems.append(Problem(TIMESTAMP, None, len(frame), (), f"dtype {frame[TIMESTAMP].dtype}, expected datetime64"))
    for column in NUMERIC_COLUMNS:
        if column not in frame.columns or frame[column].dtype == "float64":
            continue
        parsed = pd.to_numeric(frame[column], errors="coerce")
        bad = (parsed.isna() & frame[column].notna()).to_numpy()
        if bad.any():
            examples = ", ".join(repr(v) for v in frame.loc[bad, column].astype(str).unique()[:3])
            problems += _by_station(frame, bad, column, f"values that are not numbers ({examples})")
        elif not pd.api.types.is_numeric_dtype(frame[column]) and frame[column].notna().any():
            problems.append(Problem(column, None, len(frame), (), f"dtype {frame[column].dtype}, expected float64"))
    if WIND_DIRECTION in frame.columns:
        values = frame[WIND_DIRECTION]
        bad = (values.notna() & ~values.isin(COMPASS_POINTS)).to_numpy()
        if bad.any():
            examples = ", ".join(repr(v) for v in values[bad].astype(str).unique()[:3])
            problems += _by_station(frame, bad, WIND_DIRECTION, f"not a 16-point compass direction ({examples})")
    return _outcome("schema_matches", problems, {"columns_missing": len(missing)})


def check_physical_ranges(frame: pd.DataFrame) -> CheckOutcome:
    problems: list[Problem] = []
    for column, bounds in PHYSICAL_RANGES.items():
        if column not in frame.columns:
            continue
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        low = values < bounds.low
        high = values > bounds.high
        if low.any():
            what = ("negative concentration" if column in POLLUTANTS
                    else "negative value" if bounds.low == 0 else f"below the physical limit {bounds.low:g}")
            problems += _by_station(frame, low, column, f"{what} (min {np.nanmin(values[low]):g})")
        if high.any():
            problems += _by_station(frame, high, column,
                                    f"above the physical limit {bounds.high:g} (max {np.nanmax(values[high]):g})")
    return _outcome("values_physically_possible", problems, {"rows_out_of_range": sum(p.count for p in problems)})


def check_duplicates(frame: pd.DataFrame) -> CheckOutcome:
    if not {STATION, TIMESTAMP} <= set(frame.columns):
        return _outcome("no_duplicate_rows", [])
    dup = frame.duplicated([STATION, TIMESTAMP], keep=False).to_numpy()
    problems = _by_station(frame, dup, None, "duplicate (station, timestamp) rows")
    return _outcome("no_duplicate_rows", problems, {"duplicate_rows": int(dup.sum())})


def check_timestamps(frame: pd.DataFrame, day: date) -> CheckOutcome:
    if TIMESTAMP not in frame.columns or not pd.api.types.is_datetime64_any_dtype(frame[TIMESTAMP]):
        return _outcome("timestamps_within_partition", [])
    ts = frame[TIMESTAMP]
    start, end = pd.Timestamp(day), pd.Timestamp(day + timedelta(days=1))
    outside = (ts.isna() | (ts < start) | (ts >= end)).to_numpy()
    off_hour = (~outside & (ts != ts.dt.floor("h"))).to_numpy()
    problems = _by_station(frame, outside, TIMESTAMP, f"timestamp outside the partition {day.isoformat()}")
    problems += _by_station(frame, off_hour, TIMESTAMP, "timestamp not on the hour")
    return _outcome("timestamps_within_partition", problems, {"rows_outside": int(outside.sum())})


def check_stations(frame: pd.DataFrame, expected: list[str], hours: int = 24) -> CheckOutcome:
    problems: list[Problem] = []
    present = frame[STATION].astype(str) if STATION in frame.columns else pd.Series(dtype=str)
    counts = present.value_counts()
    for station in expected:
        n = int(counts.get(station, 0))
        if n == 0:
            problems.append(Problem(STATION, station, 0, (), "expected station has no rows"))
        elif n < hours:
            problems.append(Problem(STATION, station, hours - n, (), f"only {n} of {hours} hourly rows"))
    unknown = (~present.isin(expected)).to_numpy() if len(expected) else np.zeros(len(frame), bool)
    problems += _by_station(frame, unknown, STATION, "station is not in the network's station list")
    figures = {"stations_expected": len(expected), "stations_present": int(present.nunique())}
    return _outcome("stations_match_network", problems, figures)


def check_missing(frame: pd.DataFrame, thresholds: QualityThresholds) -> CheckOutcome:
    columns = [c for c in NUMERIC_COLUMNS if c in frame.columns]
    figures: dict = {}
    problems: list[Problem] = []
    if not len(frame) or not columns:
        problems.append(Problem(None, None, 0, (), "the day has no rows"))
        return _outcome("missing_share_within_limit", problems, {"missing_share": 1.0})
    values = frame[columns].apply(pd.to_numeric, errors="coerce")
    overall = float(values.isna().to_numpy().mean())
    figures["missing_share"] = round(overall, 4)
    if overall > thresholds.max_missing_share:
        problems.append(Problem(None, None, int(values.isna().to_numpy().sum()), (),
                                f"{overall:.0%} of readings missing (limit {thresholds.max_missing_share:.0%})"))
    if thresholds.target in values.columns:
        target_share = float(values[thresholds.target].isna().mean())
        figures["target_missing_share"] = round(target_share, 4)
        if target_share > thresholds.max_target_missing_share:
            missing = values[thresholds.target].isna().to_numpy()
            stations = sorted(set(frame.loc[missing, STATION].astype(str)))
            problems.append(Problem(
                thresholds.target, ", ".join(stations[:5]) + (" …" if len(stations) > 5 else ""),
                int(missing.sum()), (),
                f"target {target_share:.0%} missing (limit {thresholds.max_target_missing_share:.0%})",
            ))
    return _outcome("missing_share_within_limit", problems, figures)


def validate_day(frame: pd.DataFrame, day: date, expected_stations: list[str],
                 thresholds: QualityThresholds = QualityThresholds()) -> list[CheckOutcome]:
    """Run every check on one day's rows (as received) and return the outcomes in a fixed order."""
    return [
        check_schema(frame),
        check_physical_ranges(frame),
        check_duplicates(frame),
        check_timestamps(frame, day),
        check_stations(frame, expected_stations),
        check_missing(frame, thresholds),
    ]


def fit_for_training(outcomes: list[CheckOutcome] | list[dict]) -> bool:
    """True when no blocking check failed."""
    for o in outcomes:
        blocking, passed = (o["blocking"], o["passed"]) if isinstance(o, dict) else (o.blocking, o.passed)
        if blocking and not passed:
            return False
    return True
