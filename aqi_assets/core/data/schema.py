"""The canonical observation schema: column names, units, dtypes, physical ranges, stat bin edges.

Every source yields a long frame with one row per (station, hour): ``timestamp`` and ``station``,
then the measurements its network has (``network.Network``), in canonical units:

| column | dtype | unit | note |
|---|---|---|---|
| timestamp | datetime64[ns] | local station time, naive | top of the hour |
| station | object (str) | | station identifier |
| pm25, pm10, so2, no2, co, o3 | float64 | µg/m³ | pollutant concentrations (at least one) |
| temperature, dew_point | float64 | °C | |
| pressure | float64 | hPa | |
| humidity | float64 | % | relative humidity |
| rain | float64 | mm per hour | |
| wind_speed | float64 | m/s | |
| wind_direction | float64 | ° | where the wind blows from, clockwise from north (0–360) |

A daily partition is one calendar day of that local time. Missing readings are NaN; rows are
never dropped for being incomplete. A measurement the network does not have is an absent column,
not a column of NaN. Unknown extra columns follow the measurements, as received.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TIMESTAMP = "timestamp"
STATION = "station"
POLLUTANTS: tuple[str, ...] = ("pm25", "pm10", "so2", "no2", "co", "o3")
WIND_DIRECTION = "wind_direction"
#: Measurements that are not pollutants: weather, in the order stored.
COVARIATES: tuple[str, ...] = (
    "temperature", "pressure", "dew_point", "humidity", "rain", "wind_speed", WIND_DIRECTION,
)  # fmt: skip
#: Every measurement a network may have, in canonical order.
MEASUREMENTS: tuple[str, ...] = POLLUTANTS + COVARIATES
NUMERIC_COLUMNS: tuple[str, ...] = MEASUREMENTS
#: Every canonical column (a network's stored day holds a subset: timestamp, station, its measurements).
OBSERVATION_COLUMNS: tuple[str, ...] = (TIMESTAMP, STATION, *MEASUREMENTS)
DEFAULT_TARGET = "pm25"

#: 16-point compass, clockwise from north; index × 22.5 = direction in degrees.
COMPASS_POINTS: tuple[str, ...] = (
    "N", "NNE", "NE", "ENE", "E", "ESE", "SE", "SSE",
    "S", "SSW", "SW", "WSW", "W", "WNW", "NW", "NNW",
)  # fmt: skip
COMPASS_DEGREES: dict[str, float] = {p: i * 22.5 for i, p in enumerate(COMPASS_POINTS)}

UNITS: dict[str, str] = {
    **{p: "µg/m³" for p in POLLUTANTS},
    "temperature": "°C",
    "dew_point": "°C",
    "pressure": "hPa",
    "rain": "mm/h",
    "humidity": "%",
    "wind_speed": "m/s",
    WIND_DIRECTION: "°",
}


@dataclass(frozen=True)
class PhysicalRange:
    """Values outside [low, high] cannot be real readings (instrument fault or unit error)."""

    low: float
    high: float


#: Physically possible ranges. Concentrations cannot be negative; the upper bounds are far
#: above any recorded episode (Beijing's worst hourly PM2.5 is ~1,000 µg/m³).
PHYSICAL_RANGES: dict[str, PhysicalRange] = {
    "pm25": PhysicalRange(0.0, 2000.0),
    "pm10": PhysicalRange(0.0, 3000.0),
    "so2": PhysicalRange(0.0, 2000.0),
    "no2": PhysicalRange(0.0, 1000.0),
    "co": PhysicalRange(0.0, 30000.0),
    "o3": PhysicalRange(0.0, 1500.0),
    "temperature": PhysicalRange(-60.0, 60.0),
    "dew_point": PhysicalRange(-80.0, 40.0),
    "pressure": PhysicalRange(850.0, 1090.0),
    "rain": PhysicalRange(0.0, 300.0),
    "wind_speed": PhysicalRange(0.0, 75.0),
    "humidity": PhysicalRange(0.0, 100.0),
    WIND_DIRECTION: PhysicalRange(0.0, 360.0),
}

#: Features summarised per day in ``feature_stats`` (those a network measures).
STAT_FEATURES: tuple[str, ...] = MEASUREMENTS
#: Features whose values are angles: mean/std rules do not apply, histogram tests do.
CIRCULAR_FEATURES: frozenset[str] = frozenset({WIND_DIRECTION})
#: Physical scale per feature (its unit): drift's mean-shift denominator never drops below it,
#: and a log-scale value is log(value + scale).
MEAN_SHIFT_FLOORS: dict[str, float] = {
    "pm25": 10.0, "pm10": 20.0, "so2": 5.0, "no2": 10.0, "co": 200.0, "o3": 10.0,
    "temperature": 10.0, "dew_point": 10.0, "pressure": 10.0, "rain": 1.0, "wind_speed": 1.0,
}  # fmt: skip
DEFAULT_FLOOR = 1.0
#: Features compared on a log scale: non-negative and multiplicative (a recalibrated gain, a haze
#: episode scale every station's level), so their spread across days and stations is steadier there.
LOG_SCALE_FEATURES: frozenset[str] = frozenset({*POLLUTANTS, "rain", "wind_speed"})


#: Hourly values are compared with the other stations' on log(value + floor × this): near the
#: sensor's resolution (PM10 0.5 µg/m³, CO 5), not at a mean shift's physical scale, which squeezes
#: the scatter of the cleaner hours together (README, "Triggers on real data").
RESIDUAL_FLOOR_SHARE = 0.025


def comparable(feature: str, values: np.ndarray, floor_share: float = RESIDUAL_FLOOR_SHARE) -> np.ndarray:
    """``values`` of ``feature`` on the scale a station's hours are compared with its peers' (the
    peer residuals of ``feature_stats``): log(value + floor × ``floor_share``) for
    ``LOG_SCALE_FEATURES``, as measured otherwise."""
    if feature not in LOG_SCALE_FEATURES:
        return values
    floor = MEAN_SHIFT_FLOORS.get(feature, DEFAULT_FLOOR) * floor_share
    with np.errstate(invalid="ignore"):
        return np.log(np.maximum(values, 0.0) + floor)

#: Fixed histogram bin edges per feature (inner edges; an underflow bin below the first edge
#: and an overflow bin above the last are always added). Every feature has the same number of
#: bins, ``HISTOGRAM_BINS``, so sketches of every day line up bin by bin.
_INNER_EDGES: dict[str, list[float]] = {
    "pm25": [2, 4, 6, 8, 10, 13, 16, 20, 25, 30, 36, 43, 50, 60, 72, 86, 103, 124, 150, 180, 220, 270, 350, 500],
    "pm10": [5, 10, 15, 20, 27, 35, 43, 52, 62, 74, 87, 100, 115, 132, 150, 172, 198, 228, 262, 300, 350, 420, 520, 700],
    "so2": [1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 17, 20, 24, 28, 33, 39, 46, 55, 66, 80, 100, 130, 180],
    "no2": [3, 6, 9, 12, 16, 20, 24, 28, 33, 38, 43, 48, 54, 60, 67, 75, 84, 94, 105, 118, 133, 150, 175, 220],
    "co": [200, 300, 400, 500, 600, 700, 800, 900, 1000, 1150, 1300, 1500, 1700, 1950, 2250, 2600, 3000, 3500, 4100, 4800, 5700, 7000, 9000, 12000],
    "o3": [2, 5, 10, 15, 20, 27, 35, 43, 52, 61, 70, 80, 90, 101, 113, 126, 140, 156, 174, 195, 220, 250, 290, 350],
    "temperature": [-15, -12, -9, -7, -5, -3, -1, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 32, 36],
    "pressure": [985, 990, 994, 997, 1000, 1003, 1005, 1007, 1009, 1011, 1013, 1015, 1017, 1019, 1021, 1023, 1025, 1027, 1029, 1031, 1034, 1037, 1041, 1046],
    "dew_point": [-30, -26, -23, -20, -17, -14, -12, -10, -8, -6, -4, -2, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 21, 24],
    "rain": [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.2, 1.5, 1.8, 2.2, 2.6, 3.0, 3.5, 4.0, 5.0, 6.0, 8.0, 10.0, 14.0, 20.0, 30.0],
    "humidity": [5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 74, 78, 82, 85, 88, 91, 94, 96, 98, 99.5],
    "wind_speed": [0.3, 0.6, 0.9, 1.1, 1.3, 1.5, 1.7, 1.9, 2.1, 2.3, 2.5, 2.8, 3.1, 3.4, 3.7, 4.0, 4.4, 4.8, 5.3, 5.9, 6.6, 7.5, 9.0, 12.0],
    # 16 compass sectors centred on the points, then padding edges above 360° that stay empty.
    WIND_DIRECTION: [11.25 + 22.5 * i for i in range(16)] + [400 + i for i in range(8)],
}  # fmt: skip

HISTOGRAM_BINS = 25  # 24 inner edges -> 23 inner bins + underflow + overflow


def histogram_edges(feature: str) -> np.ndarray:
    """The full edge array (with -inf/+inf ends) used for ``feature``'s daily histogram."""
    inner = np.asarray(_INNER_EDGES[feature], dtype=float)
    return np.concatenate(([-np.inf], inner, [np.inf]))


def _check_edges() -> None:
    for feature in STAT_FEATURES:
        edges = histogram_edges(feature)
        assert len(edges) - 1 == HISTOGRAM_BINS, feature
        assert np.all(np.diff(edges) > 0), feature


_check_edges()


def as_numbers(values, column: str):
    """``values`` (a Series) as float64; unparseable text becomes NaN.

    Wind directions may be degrees or 16-point compass names (``N``, ``NNE``, ...; any case),
    which become degrees.
    """
    import pandas as pd

    if column == WIND_DIRECTION and values.dtype == object:
        names = values.astype("string").str.strip().str.upper()
        compass = names.map(COMPASS_DEGREES)
        return compass.fillna(pd.to_numeric(values, errors="coerce")).astype("float64")
    return pd.to_numeric(values, errors="coerce").astype("float64")


def parse_numeric_columns(frame, columns=NUMERIC_COLUMNS):
    """Turn text columns into float64 where every present value parses; otherwise keep the text.

    A column with any unparseable value stays as received (strings), so the schema check can
    name the cells and no value is silently replaced by NaN.
    """
    for column in columns:
        if column not in frame.columns or frame[column].dtype == "float64":
            continue
        parsed = as_numbers(frame[column], column)
        if parsed.isna().sum() == frame[column].isna().sum():
            frame[column] = parsed
    return frame


def coerce_numeric(frame, columns=NUMERIC_COLUMNS):
    """A copy of ``frame`` with every numeric column as float64 (unparseable text becomes NaN).

    For consumers (statistics, training) of a day whose problems validation has already recorded.
    """
    out = frame.copy()
    for column in columns:
        if column in out.columns and out[column].dtype != "float64":
            out[column] = as_numbers(out[column], column)
    return out
