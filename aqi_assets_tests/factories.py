"""Small, hand-made observation files for tests: canonical rows and writers for both file formats."""

from __future__ import annotations

import gzip
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from aqi_assets.core.data.schema import COMPASS_POINTS, OBSERVATION_COLUMNS
from aqi_assets.core.data.sources.prsa import PRSA_COLUMNS

STATIONS = ("Alpha", "Bravo", "Charlie")
#: The columns of a Beijing-shaped network (every canonical column but humidity).
COLUMNS: tuple[str, ...] = tuple(c for c in OBSERVATION_COLUMNS if c != "humidity")
COORDINATES = {"Alpha": (39.90, 116.40), "Bravo": (39.95, 116.30), "Charlie": (40.10, 116.60)}


def canonical_rows(start: date = date(2024, 3, 1), days: int = 3, stations=STATIONS, seed: int = 0) -> pd.DataFrame:
    """Plausible hourly rows for ``stations`` over ``days`` days, in the canonical schema."""
    rng = np.random.default_rng(seed)
    stamps = pd.date_range(pd.Timestamp(start), periods=24 * days, freq="h")
    rows = []
    for s_idx, station in enumerate(stations):
        n = len(stamps)
        pm25 = np.clip(40 + 20 * np.sin(np.arange(n) / 6) + rng.normal(0, 5, n) + 5 * s_idx, 1, None)
        rows.append(pd.DataFrame({
            "timestamp": stamps,
            "station": station,
            "pm25": pm25.round(1),
            "pm10": (pm25 * 1.4).round(1),
            "so2": rng.uniform(2, 10, n).round(1),
            "no2": rng.uniform(10, 60, n).round(1),
            "co": rng.uniform(300, 900, n).round(0),
            "o3": rng.uniform(5, 80, n).round(1),
            "temperature": rng.normal(10, 3, n).round(1),
            "pressure": rng.normal(1015, 4, n).round(1),
            "dew_point": rng.normal(-2, 3, n).round(1),
            "rain": np.zeros(n),
            "wind_speed": rng.uniform(0.5, 4, n).round(1),
            "wind_direction": rng.choice(COMPASS_POINTS, n),
        }))
    return pd.concat(rows, ignore_index=True).sort_values(["timestamp", "station"], ignore_index=True)[list(COLUMNS)]


def write_stations(directory: Path, stations=STATIONS) -> None:
    lines = ["station,latitude,longitude"] + [f"{s},{COORDINATES[s][0]},{COORDINATES[s][1]}" for s in stations]
    (directory / "stations.csv").write_text("\n".join(lines) + "\n")


def to_prsa_text(frame: pd.DataFrame, station: str) -> str:
    """One station's rows in the UCI Beijing file layout."""
    rows = frame[frame["station"] == station].reset_index(drop=True)
    inverse = {v: k for k, v in PRSA_COLUMNS.items()}
    out = pd.DataFrame({
        "No": np.arange(1, len(rows) + 1),
        "year": rows["timestamp"].dt.year, "month": rows["timestamp"].dt.month,
        "day": rows["timestamp"].dt.day, "hour": rows["timestamp"].dt.hour,
    })
    for canonical in ("pm25", "pm10", "so2", "no2", "co", "o3", "temperature", "pressure",
                      "dew_point", "rain", "wind_direction", "wind_speed", "station"):
        out[inverse[canonical]] = rows[canonical]
    return out.to_csv(index=False, na_rep="NA", lineterminator="\r\n")


def write_prsa(directory: Path, frame: pd.DataFrame, gz: bool = True) -> dict[str, Path]:
    """Write one ``PRSA_Data_<Station>_...csv[.gz]`` per station (and ``stations.csv``)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    first, last = frame["timestamp"].min(), frame["timestamp"].max()
    for station in sorted(frame["station"].unique()):
        name = f"PRSA_Data_{station}_{first:%Y%m%d}-{last:%Y%m%d}.csv" + (".gz" if gz else "")
        path = directory / name
        data = to_prsa_text(frame, station).encode()
        path.write_bytes(gzip.compress(data) if gz else data)
        paths[station] = path
    write_stations(directory, tuple(s for s in STATIONS if s in set(frame["station"])))
    return paths


def write_csv_long(directory: Path, frame: pd.DataFrame, per_day: bool = True) -> list[Path]:
    """Write the long format, one file per day (or one file) plus ``stations.csv``."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    groups = frame.groupby(frame["timestamp"].dt.date) if per_day else [("all", frame)]
    for key, part in groups:
        path = directory / f"observations_{key}.csv"
        part.to_csv(path, index=False, date_format="%Y-%m-%d %H:%M")
        paths.append(path)
    write_stations(directory)
    return paths


def day_after(day: date, n: int = 1) -> date:
    return day + timedelta(days=n)
