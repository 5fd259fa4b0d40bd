"""A source backed by text files: parsed once, indexed by day, with file defects pinned to days.

A defect spoils only the days it touches: a bad line spoils its own day; a truncated file spoils
the day its readable part ends in and every later day. Reading a spoiled day raises
``SourceError`` naming the file and the defect; every other day reads normally.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from aqi_assets.core.schema import OBSERVATION_COLUMNS, STATION, TIMESTAMP, parse_numeric_columns
from aqi_assets.core.sources.base import ObservationSource, SourceError, day_slice, empty_observations
from aqi_assets.core.sources.files import TextTable


class FileTableSource(ObservationSource):
    """Shared day indexing for ``prsa:`` and ``csv:`` sources; subclasses parse their files."""

    def __init__(self, spec: str):
        self.spec = spec
        self._loaded = False

    def _load_tables(self) -> tuple[list[tuple[TextTable, pd.DataFrame]], pd.DataFrame]:
        """Parse every file: ``[(text table, canonical frame)]`` and the station list."""
        raise NotImplementedError

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        tables, stations = self._load_tables()
        self._stations = stations
        self._day_errors: dict[date, list[str]] = {}
        self._spoiled_from: list[tuple[date, str]] = []
        frames = []
        for table, frame in tables:
            self._pin_defects(table, frame)
            frames.append(frame.dropna(subset=[TIMESTAMP]))
        frames = [f for f in frames if len(f)]
        if frames:
            data = pd.concat(frames, ignore_index=True)
            data = data.sort_values([TIMESTAMP, STATION], kind="stable").reset_index(drop=True)
            data = parse_numeric_columns(data)
        else:
            data = empty_observations()
        extra = [c for c in data.columns if c not in OBSERVATION_COLUMNS]
        self._data = data[list(OBSERVATION_COLUMNS) + extra]
        self._loaded = True

    def _pin_defects(self, table: TextTable, frame: pd.DataFrame) -> None:
        stamps = frame[TIMESTAMP]
        # a row whose timestamp cannot be read belongs to the day of the row before it
        filled = stamps.ffill().bfill()
        for row in np.flatnonzero(stamps.isna().to_numpy()):
            if pd.isna(filled.iloc[row]):
                raise SourceError(f"{table.path}: no row has a readable timestamp")
            self._day_errors.setdefault(filled.iloc[row].date(), []).append(
                f"{table.path} row {row + 2}: unreadable timestamp"
            )
        for row, defect in table.defective_rows.items():
            if row < len(filled) and not pd.isna(filled.iloc[row]):
                self._day_errors.setdefault(filled.iloc[row].date(), []).append(defect.describe())
        if table.truncated:
            last = stamps.max()
            message = next(d.describe() for d in table.defects if d.line is None)
            if pd.isna(last):
                raise SourceError(message)
            spoiled = last.date() if last.hour < 23 else last.date() + timedelta(days=1)
            self._spoiled_from.append(
                (spoiled, f"{message}; readable rows end at {last:%Y-%m-%d %H:%M}")
            )

    def stations(self) -> pd.DataFrame:
        self._ensure_loaded()
        return self._stations.copy()

    def first_day(self) -> date:
        self._ensure_loaded()
        if self._data.empty:
            raise SourceError(f"{self.spec}: the source holds no rows")
        return self._data[TIMESTAMP].iloc[0].date()

    def last_day(self) -> date | None:
        self._ensure_loaded()
        if self._data.empty:
            return None
        return self._data[TIMESTAMP].iloc[-1].date()

    def errors_for(self, day: date) -> list[str]:
        """Every file defect that spoils ``day`` (empty when the day reads cleanly)."""
        self._ensure_loaded()
        errors = list(self._day_errors.get(day, []))
        errors += [msg for start, msg in self._spoiled_from if day >= start]
        return errors

    def read_day(self, day: date) -> pd.DataFrame:
        errors = self.errors_for(day)
        if errors:
            raise SourceError(f"cannot read {day.isoformat()} from {self.spec}: " + "; ".join(errors))
        # a column that is text elsewhere in the file may be all numbers on this day
        return parse_numeric_columns(day_slice(self._data, day))

    def read_range(self, start: date, end: date) -> pd.DataFrame:
        bad = {d: e for d in _days(start, end) if (e := self.errors_for(d))}
        if bad:
            first = min(bad)
            raise SourceError(
                f"cannot read {len(bad)} day(s) from {self.spec} (first {first}): "
                + "; ".join(bad[first])
            )
        ts = self._data[TIMESTAMP].to_numpy()
        lo = ts.searchsorted(pd.Timestamp(start).to_datetime64(), side="left")
        hi = ts.searchsorted(pd.Timestamp(end + timedelta(days=1)).to_datetime64(), side="left")
        return parse_numeric_columns(self._data.iloc[lo:hi].reset_index(drop=True))


def _days(start: date, end: date):
    return (start + timedelta(days=i) for i in range((end - start).days + 1))


def read_station_coordinates(path) -> pd.DataFrame:
    """``stations.csv``: ``station, latitude, longitude`` (WGS84 degrees)."""
    from aqi_assets.core.sources.files import read_text_table

    table = read_text_table(path, ("station", "latitude", "longitude"))
    frame = table.frame[["station", "latitude", "longitude"]].copy()
    for column in ("latitude", "longitude"):
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = frame.loc[values.isna() & frame[column].notna(), "station"].tolist()
        if bad:
            raise SourceError(f"{path}: unreadable {column} for station(s) {', '.join(bad)}")
        frame[column] = values
    frame["station"] = frame["station"].astype(str).str.strip()
    return frame.reset_index(drop=True)
