"""``csv:<dir>``: the documented long format for bringing your own network's data.

Every ``*.csv`` / ``*.csv.gz`` file in the directory (except ``stations.csv``) holds one row per
station and hour. Required: ``timestamp`` (ISO-8601 local time at the top of the hour,
``2024-05-01 13:00``; an offset such as ``+08:00`` is dropped, the wall-clock time kept),
``station``, and at least one pollutant column. Every other measurement is optional (see
``aqi_assets.core.data.network`` for the names, aliases and ``name[unit]`` headers, and
``aqi_assets.core.data.units`` for the units); a column no file has is not measured. Columns the
platform does not know are kept as received. Missing values are empty or ``NA``. Files may split
the data any way (per station, per month, per day) and need not all have the same columns. An
optional ``stations.csv`` with ``station, latitude, longitude`` gives coordinates and the list of
expected stations.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from aqi_assets.core.data.network import HeaderError, map_headers
from aqi_assets.core.data.schema import STATION, TIMESTAMP
from aqi_assets.core.data.sources.base import SourceError
from aqi_assets.core.data.sources.file_source import FileTableSource, canonical_values, read_station_coordinates
from aqi_assets.core.data.sources.files import TextTable, read_text_table


def read_timestamps(values: pd.Series) -> pd.Series:
    """Naive local timestamps (NaT where unreadable); an offset or zone is dropped, the wall time kept."""
    stamps = pd.to_datetime(values, errors="coerce", format="mixed")
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_localize(None)
    elif stamps.dtype == object:  # mixed offsets: each value keeps its own wall-clock time
        stamps = pd.to_datetime(
            values.astype("string").str.replace(r"(Z|[+-]\d\d:?\d\d)$", "", regex=True),
            errors="coerce", format="mixed",
        )
    return stamps.astype("datetime64[ns]")


def _to_canonical(table: TextTable, conversions: set[str]) -> pd.DataFrame:
    try:
        columns = map_headers(list(table.frame.columns), table.path)
    except HeaderError as exc:
        raise SourceError(str(exc)) from exc
    frame = pd.DataFrame(index=table.frame.index)
    frame[TIMESTAMP] = read_timestamps(table.frame[columns.header_of(TIMESTAMP)])
    frame[STATION] = table.frame[columns.header_of(STATION)].astype(str).str.strip()
    for column in columns.measured:
        header, how = columns.canonical[column]
        frame[column] = canonical_values(table.frame[header], how)
        if not how.identity:
            conversions.add(how.describe())
    for header in columns.extra:
        frame[header] = table.frame[header]
    return frame


class CsvLongSource(FileTableSource):
    """Long-format CSV files of a directory (see the module docstring for the format)."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory).expanduser()
        if not self.directory.is_dir():
            raise SourceError(f"csv source: {self.directory} is not a directory")
        self.files = sorted(p for p in self.directory.iterdir()
                            if p.name.endswith((".csv", ".csv.gz")) and not p.name.startswith("stations."))
        if not self.files:
            raise SourceError(f"csv source: no *.csv or *.csv.gz data files in {self.directory}")
        self._converted: set[str] = set()
        super().__init__(f"csv:{self.directory}")

    def _conversions(self) -> tuple[str, ...]:
        return tuple(sorted(self._converted))

    def _load_tables(self):
        tables = []
        for path in self.files:
            table = read_text_table(path, ())
            tables.append((table, _to_canonical(table, self._converted)))
        coords_path = next((p for p in self.directory.iterdir() if p.name.startswith("stations.csv")), None)
        if coords_path is not None:
            stations = read_station_coordinates(coords_path)
        else:
            names = sorted({s for _, f in tables for s in f[STATION].unique()})
            stations = pd.DataFrame({STATION: names, "latitude": float("nan"), "longitude": float("nan")})
        return tables, stations
