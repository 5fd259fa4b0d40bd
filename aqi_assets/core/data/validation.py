"""Data-quality checks on one day of observations: each failure names column, station and rows.

Validation only reads: it never drops, fills or rewrites a value. ``validate_day`` returns one
``CheckOutcome`` per check; blocking checks that fail mark the day unfit for training (the raw
rows are kept as received and the outcome is stored beside them). Checks follow the network: a
measurement it does not have is not looked for and never counts as missing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd

from aqi_assets.core.configuration.config import QualitySettings
from aqi_assets.core.data.network import Network
from aqi_assets.core.data.schema import (
    DEFAULT_TARGET,
    MEASUREMENTS,
    PHYSICAL_RANGES,
    POLLUTANTS,
    STATION,
    TIMESTAMP,
    WIND_DIRECTION,
    as_numbers,
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
    #: what ``count`` counts: ``row`` (station-hours) or ``reading`` (single values)
    unit: str = "row"

    def describe(self) -> str:
        where = ", ".join(
            p for p in (f"column {self.column}" if self.column else "",
                        f"station {self.station}" if self.station else "") if p
        )
        rows = f" at {', '.join(self.rows)}{' …' if self.count > len(self.rows) else ''}" if self.rows else ""
        counted = f"{self.count} {self.unit}{'' if self.count == 1 else 's'}"
        return f"{where + ': ' if where else ''}{self.detail} ({counted}{rows})"


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


CHECK_DESCRIPTIONS: dict[str, tuple[bool, str]] = {
    "schema_matches": (True, "timestamp, station and every measurement of the network are present; numbers parse; "
                             "wind directions are degrees or compass points."),
    "values_physically_possible": (True, "No negative concentrations; weather values and wind directions within "
                                         "physical ranges."),
    "no_duplicate_rows": (True, "At most one row per (station, timestamp)."),
    "timestamps_within_partition": (True, "Every timestamp falls on the partition's day, on the hour."),
    "stations_match_network": (True, "Every expected station reports 24 hours; no unknown station appears."),
    "missing_share_within_limit": (True, "Missing readings of the measured columns overall, and of the target "
                                         "(training.target), stay under quality.max_missing_share and "
                                         "quality.max_target_missing_share."),
    "no_stuck_sensors": (False, "No station reports the same value of a measurement for quality.stuck_hours hours "
                                "or more in a row (a stuck or flat-lining sensor; rain is not checked)."),
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


def check_schema(frame: pd.DataFrame, network: Network | None = None) -> CheckOutcome:
    """``timestamp``, ``station`` and the network's measurements present; values parse."""
    problems: list[Problem] = []
    measured = network.measured if network is not None else _measured(frame)
    missing = [c for c in (TIMESTAMP, STATION, *measured) if c not in frame.columns]
    for column in missing:
        problems.append(Problem(column, None, len(frame), (), "required column is missing"))
    if TIMESTAMP in frame.columns and not pd.api.types.is_datetime64_any_dtype(frame[TIMESTAMP]):
        problems.append(Problem(TIMESTAMP, None, len(frame), (), f"dtype {frame[TIMESTAMP].dtype}, expected datetime64"))
    for column in measured:
        if column not in frame.columns or frame[column].dtype == "float64":
            continue
        parsed = as_numbers(frame[column], column)
        bad = (parsed.isna() & frame[column].notna()).to_numpy()
        if bad.any():
            examples = ", ".join(repr(v) for v in frame.loc[bad, column].astype(str).unique()[:3])
            what = ("not a wind direction (degrees 0–360 or a 16-point compass name)" if column == WIND_DIRECTION
                    else "values that are not numbers")
            problems += _by_station(frame, bad, column, f"{what} ({examples})")
        elif not pd.api.types.is_numeric_dtype(frame[column]) and frame[column].notna().any() \
                and column != WIND_DIRECTION:
            problems.append(Problem(column, None, len(frame), (), f"dtype {frame[column].dtype}, expected float64"))
    return _outcome("schema_matches", problems, {"columns_missing": len(missing)})


def _measured(frame: pd.DataFrame) -> tuple[str, ...]:
    """The canonical measurement columns ``frame`` has (the network of a frame given alone)."""
    return tuple(c for c in MEASUREMENTS if c in frame.columns)


def check_physical_ranges(frame: pd.DataFrame) -> CheckOutcome:
    problems: list[Problem] = []
    for column, bounds in PHYSICAL_RANGES.items():
        if column not in frame.columns:
            continue
        values = as_numbers(frame[column], column).to_numpy(dtype=float)
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
    problems += _by_station(frame, off_hour, TIMESTAMP,
                            "timestamp not on the hour (the platform takes hourly rows: average readings "
                            "taken more often to the hour first)")
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


def check_missing(frame: pd.DataFrame, quality: QualitySettings, target: str = DEFAULT_TARGET,
                  network: Network | None = None) -> CheckOutcome:
    """Shares of missing readings among the measured columns, overall and of the target."""
    measured = network.measured if network is not None else _measured(frame)
    columns = [c for c in measured if c in frame.columns]
    figures: dict = {"columns_checked": len(columns)}
    problems: list[Problem] = []
    if not len(frame) or not columns:
        problems.append(Problem(None, None, 0, (), "the day has no rows"))
        return _outcome("missing_share_within_limit", problems, {"missing_share": 1.0})
    values = pd.DataFrame({c: as_numbers(frame[c], c) for c in columns})
    absent = values.isna().to_numpy()
    overall = float(absent.mean())
    figures["missing_share"] = round(overall, 4)
    if overall > quality.max_missing_share:
        problems.append(Problem(
            None, None, int(absent.sum()), (),
            f"{overall:.0%} of the {absent.size:,} readings of {len(columns)} measured column(s) missing "
            f"(limit {quality.max_missing_share:.0%}, quality.max_missing_share)", unit="reading",
        ))
    if target not in measured:
        problems.append(Problem(target, None, 0, (), f"the target {target} (training.target) is not measured by this "
                                                     f"network (it measures {', '.join(measured)})", unit="reading"))
    elif target in values.columns:
        target_share = float(values[target].isna().mean())
        figures["target_missing_share"] = round(target_share, 4)
        if target_share > quality.max_target_missing_share:
            missing = values[target].isna().to_numpy()
            stations = sorted(set(frame.loc[missing, STATION].astype(str)))
            problems.append(Problem(
                target, ", ".join(stations[:5]) + (" …" if len(stations) > 5 else ""),
                int(missing.sum()), (),
                f"target {target_share:.0%} missing (limit {quality.max_target_missing_share:.0%}, "
                "quality.max_target_missing_share)", unit="reading",
            ))
    return _outcome("missing_share_within_limit", problems, figures)


#: Measurements not checked for stuck values: zero rain for hours is weather, not a fault, and a
#: 16-point wind direction holds for a whole day in steady winds (the simulated city: 2 station-days
#: in 28; Beijing: 155 station-days of 12 hours or more in four years).
NOT_CHECKED_FOR_STUCK: frozenset[str] = frozenset({"rain", "wind_direction"})
#: Concentrations (µg/m³) at or below which clean air is often reported at the instrument's
#: resolution for many hours (Beijing's SO2 sits at 2–3 for whole days); runs there are not flagged.
#: On the Beijing data (2013–2017, 17,532 station-days) the check then flags 0–4 station-days per
#: pollutant in four years, except CO (87, reported in steps of 100) and O3 (147).
STUCK_FLOORS: dict[str, float] = {"pm25": 5.0, "pm10": 10.0, "so2": 5.0, "no2": 5.0, "co": 300.0, "o3": 5.0}


def check_stuck(frame: pd.DataFrame, quality: QualitySettings, network: Network | None = None) -> CheckOutcome:
    """Runs of one repeated value lasting ``stuck_hours`` consecutive hours or more (a warning)."""
    measured = network.measured if network is not None else _measured(frame)
    columns = [c for c in measured if c in frame.columns and c not in NOT_CHECKED_FOR_STUCK]
    problems: list[Problem] = []
    if not len(frame) or not columns or not {STATION, TIMESTAMP} <= set(frame.columns) \
            or not pd.api.types.is_datetime64_any_dtype(frame[TIMESTAMP]):
        return _outcome("no_stuck_sensors", problems)
    ordered = frame.sort_values([STATION, TIMESTAMP], kind="stable")
    stations = ordered[STATION].astype(str).to_numpy()
    hours = (ordered[TIMESTAMP].to_numpy().astype("datetime64[h]")).astype("int64")
    for column in columns:
        values = as_numbers(ordered[column], column).to_numpy(dtype=float)
        same = (values[1:] == values[:-1]) & (stations[1:] == stations[:-1]) & (np.diff(hours) == 1)
        run_start = np.concatenate(([True], ~same))
        run_id = np.cumsum(run_start) - 1
        lengths = np.bincount(run_id)
        floor = STUCK_FLOORS.get(column, -np.inf)
        for run in np.flatnonzero(lengths >= quality.stuck_hours):
            rows = np.flatnonzero(run_id == run)
            if not values[rows[0]] > floor:  # NaN runs are missing readings, not a stuck value
                continue
            first, last = ordered[TIMESTAMP].iloc[rows[0]], ordered[TIMESTAMP].iloc[rows[-1]]
            problems.append(Problem(
                column, stations[rows[0]], len(rows), (f"{first:%Y-%m-%d %H:%M}", f"{last:%H:%M}"),
                f"the same value {values[rows[0]]:g} for {len(rows)} hours in a row "
                f"(at most {quality.stuck_hours - 1}, quality.stuck_hours)", unit="hour",
            ))
    return _outcome("no_stuck_sensors", problems, {"stuck_runs": len(problems)})


def validate_day(frame: pd.DataFrame, day: date, expected_stations: list[str],
                 quality: QualitySettings = QualitySettings(), target: str = DEFAULT_TARGET,
                 network: Network | None = None) -> list[CheckOutcome]:
    """Run every check on one day's rows (as received) and return the outcomes in a fixed order.

    ``quality`` and ``target`` are the configuration's (``quality.*``, ``training.target``);
    ``network`` says which measurements to expect (default: the ones ``frame`` has).
    """
    return [
        check_schema(frame, network),
        check_physical_ranges(frame),
        check_duplicates(frame),
        check_timestamps(frame, day),
        check_stations(frame, expected_stations),
        check_missing(frame, quality, target, network),
        check_stuck(frame, quality, network),
    ]


def fit_for_training(outcomes: list[CheckOutcome] | list[dict]) -> bool:
    """True when no blocking check failed."""
    for o in outcomes:
        blocking, passed = (o["blocking"], o["passed"]) if isinstance(o, dict) else (o.blocking, o.passed)
        if blocking and not passed:
            return False
    return True
