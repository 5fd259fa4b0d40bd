"""A source backed by text files: parsed once, indexed by day, with file defects pinned to days.

A defect spoils only the days it touches: a bad line spoils its own day; a truncated file spoils
the day its readable part ends in and every later day. Reading a spoiled day raises
``SourceError`` naming the file and the defect; every other day reads normally.

The network is what the files hold together: a measurement present in any file is measured (rows
of a file without it are missing there), one present in none is not measured.
"""

from __future__ import annotations

import functools
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from aqi_assets.core.data.network import Network
from aqi_assets.core.data.schema import MEASUREMENTS, POLLUTANTS, STATION, TIMESTAMP, as_numbers, parse_numeric_columns
from aqi_assets.core.data.sources.base import ObservationSource, SourceError, day_slice, empty_observations
from aqi_assets.core.data.sources.files import TextTable
from aqi_assets.core.data.units import Conversion


class FileTableSource(ObservationSource):
    """Shared day indexing for ``prsa:`` and ``csv:`` sources; subclasses parse their files."""

    def __init__(self, spec: str):
        self.spec = spec
        self._loaded = False

    def _load_tables(self) -> tuple[list[tuple[TextTable, pd.DataFrame]], pd.DataFrame]:
        """Parse every file: ``[(text table, canonical frame)]`` and the station list.

        A canonical frame has ``timestamp`` (datetime64), ``station`` (str), the measurement
        columns the file has (canonical names and units; text that does not parse kept as text)
        and the file's extra columns as received.
        """
        raise NotImplementedError

    def _conversions(self) -> tuple[str, ...]:
        """Descriptions of the unit conversions the files needed (none by default)."""
        return ()

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
        self._network = self._infer_network(tables)
        frames = [f for f in frames if len(f)]
        if frames:
            data = pd.concat(frames, ignore_index=True)
            data = data.sort_values([TIMESTAMP, STATION], kind="stable").reset_index(drop=True)
            data = parse_numeric_columns(data)
        else:
            data = empty_observations(self._network.columns)
        self._data = data[list(self._network.columns)]
        self._loaded = True

    def _infer_network(self, tables: list[tuple[TextTable, pd.DataFrame]]) -> Network:
        """Measured: a measurement some file has with at least one value. A column that is empty in
        every file that has it is not measured (and named); no pollutant with a value is an error."""
        present: dict[str, list[str]] = {}
        for table, frame in tables:
            for column in frame.columns:
                if column in MEASUREMENTS:
                    present.setdefault(column, []).append(table.path)
        filled = {c for c in present if any(f[c].notna().any() for _, f in tables if c in f.columns)}
        empty = tuple(c for c in MEASUREMENTS if c in present and c not in filled)
        if not any(c in filled for c in POLLUTANTS):
            if any(c in POLLUTANTS for c in empty):
                where = {Path(p).name for c in empty if c in POLLUTANTS for p in present[c]}
                raise SourceError(
                    f"{self.spec}: the pollutant column(s) {', '.join(c for c in empty if c in POLLUTANTS)} "
                    f"hold no value in any file ({', '.join(sorted(where))}); the network needs at least one "
                    "pollutant with readings"
                )
            headers = sorted({str(c) for _, f in tables for c in f.columns})
            raise SourceError(
                f"{self.spec}: no pollutant column ({', '.join(POLLUTANTS)}) in any file; columns found: "
                f"{', '.join(headers)}"
            )
        extra = tuple(dict.fromkeys(c for _, f in tables for c in f.columns
                                    if c not in MEASUREMENTS and c not in (TIMESTAMP, STATION)))
        return Network(tuple(c for c in MEASUREMENTS if c in filled), extra, self._conversions(), empty)

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

    def network(self) -> Network:
        self._ensure_loaded()
        return self._network

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


@functools.lru_cache(maxsize=8)
def _cached(cls: type, directory: str, _stamp: tuple) -> "FileTableSource":
    return cls(directory)


def cached_source(cls: type, directory: str | Path) -> "FileTableSource":
    """``cls(directory)``, parsed once per process and re-read when any file's size or mtime changes."""
    path = Path(directory).expanduser().resolve()
    stamp = tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in path.iterdir())) \
        if path.is_dir() else ()
    return _cached(cls, str(path), stamp)


def canonical_values(values: pd.Series, how: Conversion) -> pd.Series:
    """``values`` (text) in ``how``'s canonical unit; text that is not a number stays as received."""
    if how.identity:
        return values
    numbers = as_numbers(values, how.column)
    converted = pd.Series(how.apply(numbers.to_numpy()), index=values.index)
    bad = numbers.isna() & values.notna()
    if not bad.any():
        return converted.astype("float64")
    return converted.astype(object).where(~bad, values)


def _days(start: date, end: date):
    return (start + timedelta(days=i) for i in range((end - start).days + 1))


def read_station_coordinates(path) -> pd.DataFrame:
    """``stations.csv``: ``station, latitude, longitude`` (WGS84 degrees)."""
    from aqi_assets.core.data.sources.files import read_text_table

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
