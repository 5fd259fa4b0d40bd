"""``prsa:<dir>``: the UCI Beijing Multi-Site Air-Quality format (one CSV per station, gz or plain).

Files named ``PRSA_Data_<Station>_*.csv[.gz]`` with the columns ``No, year, month, day, hour,
PM2.5, PM10, SO2, NO2, CO, O3, TEMP, PRES, DEWP, RAIN, wd, WSPM, station``; an optional
``stations.csv`` (``station, latitude, longitude``) gives coordinates. Data: Chen, S. (2017),
UCI ML Repository #501, DOI 10.24432/C5RK5G, CC BY 4.0.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd

from aqi_assets.core.schema import STATION, TIMESTAMP
from aqi_assets.core.sources.base import SourceError
from aqi_assets.core.sources.file_source import FileTableSource, read_station_coordinates
from aqi_assets.core.sources.files import read_text_table

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
    """Every ``PRSA_Data_*.csv[.gz]`` file of a directory, one station per file."""

    def __init__(self, directory: str | Path):
        directory = Path(directory).expanduser()
        if not directory.is_dir():
            raise SourceError(f"prsa source: {directory} is not a directory")
        files = sorted(p for p in directory.iterdir()
                       if p.name.startswith("PRSA_Data_") and p.name.endswith((".csv", ".csv.gz")))
        if not files:
            raise SourceError(f"prsa source: no PRSA_Data_*.csv[.gz] files in {directory}")
        tables = []
        for path in files:
            table = read_text_table(path, tuple(PRSA_COLUMNS) + _TIME_COLUMNS)
            tables.append((table, _to_canonical(table.frame)))
        names = sorted({s for _, f in tables for s in f[STATION].unique()})
        coords_path = directory / "stations.csv"
        if coords_path.exists():
            stations = read_station_coordinates(coords_path)
        else:
            stations = pd.DataFrame({STATION: names, "latitude": float("nan"), "longitude": float("nan")})
        super().__init__(f"prsa:{directory}", tables, stations)


@functools.lru_cache(maxsize=4)
def load_prsa(directory: str, _stamp: tuple = ()) -> PrsaSource:
    """A cached ``PrsaSource`` (re-read when any file's size or mtime changes)."""
    return PrsaSource(directory)


def prsa_source(directory: str) -> PrsaSource:
    path = Path(directory).expanduser().resolve()
    stamp = tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in path.iterdir())) \
        if path.is_dir() else ()
    return load_prsa(str(path), stamp)
