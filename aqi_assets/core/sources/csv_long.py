"""``csv:<dir>``: the documented long format for bringing your own network's data.

Every ``*.csv`` / ``*.csv.gz`` file in the directory (except ``stations.csv``) holds rows with
the columns ``timestamp, station, pm25, pm10, so2, no2, co, o3, temperature, pressure,
dew_point, rain, wind_speed, wind_direction`` (names as in ``aqi_assets.core.schema``; extra
columns such as ``humidity`` are kept). ``timestamp`` is ISO-8601 local time at the top of the
hour (``2024-05-01 13:00``); missing values are empty or ``NA``. Files may split the data any way
(per station, per month, per day). An optional ``stations.csv`` with ``station, latitude,
longitude`` gives coordinates and the list of expected stations.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from aqi_assets.core.schema import OBSERVATION_COLUMNS, STATION, TIMESTAMP
from aqi_assets.core.sources.base import SourceError
from aqi_assets.core.sources.file_source import FileTableSource, read_station_coordinates
from aqi_assets.core.sources.files import read_text_table


def _to_canonical(text: pd.DataFrame) -> pd.DataFrame:
    frame = text.copy()
    frame[TIMESTAMP] = pd.to_datetime(frame[TIMESTAMP], errors="coerce", format="mixed").astype(
        "datetime64[ns]"
    )
    frame[STATION] = frame[STATION].astype(str).str.strip()
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
        super().__init__(f"csv:{self.directory}")

    def _load_tables(self):
        tables = []
        for path in self.files:
            table = read_text_table(path, OBSERVATION_COLUMNS)
            tables.append((table, _to_canonical(table.frame)))
        coords_path = next((p for p in self.directory.iterdir() if p.name.startswith("stations.csv")), None)
        if coords_path is not None:
            stations = read_station_coordinates(coords_path)
        else:
            names = sorted({s for _, f in tables for s in f[STATION].unique()})
            stations = pd.DataFrame({STATION: names, "latitude": float("nan"), "longitude": float("nan")})
        return tables, stations
