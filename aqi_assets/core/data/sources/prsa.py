"""``prsa:<dir>``: the UCI Beijing Multi-Site Air-Quality format (one CSV per station, gz or plain).

Files named ``PRSA_Data_<Station>_*.csv[.gz]`` with the columns ``No, year, month, day, hour,
PM2.5, PM10, SO2, NO2, CO, O3, TEMP, PRES, DEWP, RAIN, wd, WSPM, station``; an optional
``stations.csv`` (``station, latitude, longitude``) gives coordinates. Data: Chen, S. (2017),
UCI ML Repository #501, DOI 10.24432/C5RK5G, CC BY 4.0.
"""

from __future__ import annotations

import functools
from datetime import date
from pathlib import Path

import pandas as pd

from aqi_assets.core.data.schema import STATION, TIMESTAMP
from aqi_assets.core.data.sources.base import SourceError
from aqi_assets.core.data.sources.file_source import FileTableSource, cached_source, read_station_coordinates
from aqi_assets.core.data.sources.files import read_file_bytes, read_text_table

PRSA_COLUMNS: dict[str, str] = {
    "PM2.5": "pm25",
    "PM10": "pm10",
    "SO2": "so2",
    "NO2": "no2",
    "CO": "co",
    "O3": "o3",
    "TEMP": "temperature",
    "PRES": "pressure",
    "DEWP": "dew_point",
    "RAIN": "rain",
    "WSPM": "wind_speed",
    "wd": "wind_direction",
    "station": STATION,
}
_TIME_COLUMNS = ("year", "month", "day", "hour")
ATTRIBUTION = (
    "Beijing Multi-Site Air-Quality Data, Chen, S. (2017), UCI ML Repository, "
    "DOI 10.24432/C5RK5G, CC BY 4.0"
)


def _to_canonical(text: pd.DataFrame) -> pd.DataFrame:
    parts = {c: pd.to_numeric(text[c], errors="coerce") for c in _TIME_COLUMNS}
    stamps = pd.to_datetime(
        pd.DataFrame({"year": parts["year"], "month": parts["month"], "day": parts["day"],
                      "hour": parts["hour"]}),
        errors="coerce",
    )
    frame = text.rename(columns=PRSA_COLUMNS)[list(PRSA_COLUMNS.values())].copy()
    frame.insert(0, TIMESTAMP, stamps.astype("datetime64[ns]"))
    frame[STATION] = frame[STATION].astype(str).str.strip()
    return frame


class PrsaSource(FileTableSource):
    """Every ``PRSA_Data_*.csv[.gz]`` file of a directory, one station per file.

    Files are parsed on first use; ``first_day``/``last_day`` only peek at each file's first and
    last rows, so building the partition set at definition load stays cheap.
    """

    def __init__(self, directory: str | Path):
        self.directory = Path(directory).expanduser()
        if not self.directory.is_dir():
            raise SourceError(f"prsa source: {self.directory} is not a directory")
        self.files = sorted(p for p in self.directory.iterdir()
                            if p.name.startswith("PRSA_Data_") and p.name.endswith((".csv", ".csv.gz")))
        if not self.files:
            raise SourceError(f"prsa source: no PRSA_Data_*.csv[.gz] files in {self.directory}")
        super().__init__(f"prsa:{self.directory}")

    def _load_tables(self):
        tables = []
        for path in self.files:
            table = read_text_table(path, tuple(PRSA_COLUMNS) + _TIME_COLUMNS)
            tables.append((table, _to_canonical(table.frame)))
        coords_path = self.directory / "stations.csv"
        if coords_path.exists():
            stations = read_station_coordinates(coords_path)
        else:
            names = sorted({s for _, f in tables for s in f[STATION].unique()})
            stations = pd.DataFrame({STATION: names, "latitude": float("nan"), "longitude": float("nan")})
        return tables, stations

    @functools.cached_property
    def _peek_bounds(self) -> tuple[date, date]:
        firsts, lasts = [], []
        for path in self.files:
            data, _ = read_file_bytes(path)
            lines = [line for line in data.decode("utf-8", errors="replace").splitlines() if line.strip()]
            if len(lines) < 2:
                raise SourceError(f"{path}: file is empty (no header, no rows)")
            header = [h.strip().strip('"') for h in lines[0].split(",")]
            try:
                idx = [header.index(c) for c in _TIME_COLUMNS[:3]]
                for line, out in ((lines[1], firsts), (lines[-1], lasts)):
                    fields = [f.strip().strip('"') for f in line.split(",")]
                    out.append(date(*(int(fields[i]) for i in idx)))
            except (ValueError, IndexError):
                self._ensure_loaded()
                return super().first_day(), super().last_day()
        return min(firsts), max(lasts)

    def first_day(self) -> date:
        if self._loaded:
            return super().first_day()
        return self._peek_bounds[0]

    def last_day(self) -> date | None:
        if self._loaded:
            return super().last_day()
        return self._peek_bounds[1]


def prsa_source(directory: str) -> PrsaSource:
    """The (cached) source of a directory of PRSA files."""
    return cached_source(PrsaSource, directory)
