"""The US EPA Air Quality Index (2024 breakpoints) of every pollutant: categories and index values.

Concentrations arrive in µg/m³ (the platform's unit) and are converted to the unit of each
pollutant's breakpoints at 25 °C and 1 atm (``units.GAS_UG_PER_PPB``: NO2, SO2 and O3 in ppb,
CO in ppm), then truncated as the EPA prescribes (PM2.5 and CO to 0.1, PM10, NO2, SO2 and O3 to
integers), so PM2.5 9.04 is "Good" and 9.1 "Moderate". Negative inputs count as 0.

The platform forecasts hours, so the breakpoints are applied to hourly values (the EPA averages
PM2.5 and PM10 over 24 hours, CO and O3 over 8 hours; no averaging is done here):

| pollutant | unit | EPA averaging of the table | Good upper bound |
|---|---|---|---|
| pm25 | µg/m³ | 24 h | 9.0 |
| pm10 | µg/m³ | 24 h | 54 |
| o3 | ppb | 8 h up to Very Unhealthy (≤ 404 ppb), 1 h for Hazardous | 54 |
| co | ppm | 8 h | 4.4 |
| so2 | ppb | 1 h | 35 |
| no2 | ppb | 1 h | 53 |

Above the top breakpoint the index is extrapolated along the Hazardous segment (the EPA calls
this "beyond the AQI"); the category stays Hazardous.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aqi_assets.core.data.units import GAS_UG_PER_PPB

CATEGORIES: tuple[str, ...] = (
    "Good", "Moderate", "Unhealthy for Sensitive Groups", "Unhealthy", "Very Unhealthy", "Hazardous",
)  # fmt: skip
_INDEX = ((0, 50), (51, 100), (101, 150), (151, 200), (201, 300), (301, 500))


@dataclass(frozen=True)
class Breakpoints:
    """One pollutant's table: its unit, the truncation decimals, and (low, high) per category."""

    unit: str
    decimals: int
    ranges: tuple[tuple[float, float], ...]
    #: concentration in the table's unit per µg/m³
    per_ug: float = 1.0


BREAKPOINTS: dict[str, Breakpoints] = {
    "pm25": Breakpoints("µg/m³", 1, ((0.0, 9.0), (9.1, 35.4), (35.5, 55.4), (55.5, 125.4), (125.5, 225.4),
                                     (225.5, 325.4))),
    "pm10": Breakpoints("µg/m³", 0, ((0, 54), (55, 154), (155, 254), (255, 354), (355, 424), (425, 604))),
    "o3": Breakpoints("ppb", 0, ((0, 54), (55, 70), (71, 85), (86, 105), (106, 404), (405, 604)),
                      1.0 / GAS_UG_PER_PPB["o3"]),
    "co": Breakpoints("ppm", 1, ((0.0, 4.4), (4.5, 9.4), (9.5, 12.4), (12.5, 15.4), (15.5, 30.4), (30.5, 50.4)),
                      1.0 / (1000.0 * GAS_UG_PER_PPB["co"])),
    "so2": Breakpoints("ppb", 0, ((0, 35), (36, 75), (76, 185), (186, 304), (305, 604), (605, 1004)),
                       1.0 / GAS_UG_PER_PPB["so2"]),
    "no2": Breakpoints("ppb", 0, ((0, 53), (54, 100), (101, 360), (361, 649), (650, 1249), (1250, 2049)),
                       1.0 / GAS_UG_PER_PPB["no2"]),
}  # fmt: skip


def _table(pollutant: str) -> Breakpoints:
    try:
        return BREAKPOINTS[pollutant]
    except KeyError:
        raise ValueError(f"no AQI breakpoints for {pollutant!r}; known: {', '.join(BREAKPOINTS)}") from None


def truncated(values, pollutant: str = "pm25") -> np.ndarray:
    """µg/m³ values in the unit of ``pollutant``'s breakpoints, truncated (not rounded); negatives as 0."""
    table = _table(pollutant)
    scale = 10.0 ** table.decimals
    converted = np.clip(np.asarray(values, dtype=float), 0.0, None) * table.per_ug
    return np.floor(converted * scale + 1e-6) / scale


def category_index(values, pollutant: str = "pm25") -> np.ndarray:
    """Category number 0 (Good) .. 5 (Hazardous) per µg/m³ value; -1 where the value is NaN."""
    table = _table(pollutant)
    concentration = truncated(values, pollutant)
    highs = np.array([high for _, high in table.ranges[:-1]])
    index = np.searchsorted(highs, concentration, side="left")
    return np.where(np.isnan(concentration), -1, index)


def category(values, pollutant: str = "pm25") -> np.ndarray:
    """Category name per µg/m³ value (``None`` where NaN)."""
    names = np.array(CATEGORIES + (None,), dtype=object)
    return names[category_index(values, pollutant)]


def aqi(values, pollutant: str = "pm25") -> np.ndarray:
    """The AQI value (linear within each breakpoint segment, rounded to an integer); NaN stays NaN."""
    table = _table(pollutant)
    concentration = truncated(values, pollutant)
    index = np.minimum(np.maximum(category_index(values, pollutant), 0), len(CATEGORIES) - 1)
    rows = np.array([(*table.ranges[i], *_INDEX[i]) for i in range(len(CATEGORIES))], dtype=float)
    c_lo, c_hi, i_lo, i_hi = (rows[index, j] for j in range(4))
    value = (i_hi - i_lo) / (c_hi - c_lo) * (concentration - c_lo) + i_lo
    return np.where(np.isnan(concentration), np.nan, np.round(value))
