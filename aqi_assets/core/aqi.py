"""The US EPA Air Quality Index for PM2.5 (2024 breakpoints): categories and index values.

Concentrations are truncated to 0.1 µg/m³ first, as the EPA prescribes, so 9.04 is "Good" and
9.1 "Moderate". Negative inputs count as 0. Above 325.4 µg/m³ the index is extrapolated along
the Hazardous segment (the EPA calls this "beyond the AQI"); the category stays Hazardous.
"""

from __future__ import annotations

import numpy as np

#: (category, low concentration, high concentration, low index, high index), µg/m³.
PM25_BREAKPOINTS: tuple[tuple[str, float, float, int, int], ...] = (
    ("Good", 0.0, 9.0, 0, 50),
    ("Moderate", 9.1, 35.4, 51, 100),
    ("Unhealthy for Sensitive Groups", 35.5, 55.4, 101, 150),
    ("Unhealthy", 55.5, 125.4, 151, 200),
    ("Very Unhealthy", 125.5, 225.4, 201, 300),
    ("Hazardous", 225.5, 325.4, 301, 500),
)
CATEGORIES: tuple[str, ...] = tuple(b[0] for b in PM25_BREAKPOINTS)
_UPPER = np.array([b[2] for b in PM25_BREAKPOINTS[:-1]])


def truncate_concentration(pm25) -> np.ndarray:
    """PM2.5 truncated (not rounded) to one decimal, negatives as 0; NaN stays NaN."""
    values = np.clip(np.asarray(pm25, dtype=float), 0.0, None)
    return np.floor(values * 10.0 + 1e-6) / 10.0


def pm25_category_index(pm25) -> np.ndarray:
    """Category number 0 (Good) .. 5 (Hazardous) per value; -1 where the value is NaN."""
    values = truncate_concentration(pm25)
    index = np.searchsorted(_UPPER, values, side="left")
    return np.where(np.isnan(values), -1, index)


def pm25_category(pm25) -> np.ndarray:
    """Category name per value (``None`` where NaN)."""
    index = pm25_category_index(pm25)
    names = np.array(CATEGORIES + (None,), dtype=object)
    return names[index]


def pm25_aqi(pm25) -> np.ndarray:
    """The AQI value (linear within each breakpoint segment, rounded to an integer); NaN stays NaN."""
    values = truncate_concentration(pm25)
    index = np.searchsorted(_UPPER, values, side="left")
    table = np.array([b[1:] for b in PM25_BREAKPOINTS], dtype=float)
    c_lo, c_hi, i_lo, i_hi = (table[np.minimum(index, len(table) - 1), j] for j in range(4))
    aqi = (i_hi - i_lo) / (c_hi - c_lo) * (values - c_lo) + i_lo
    return np.round(aqi)
