"""Units a network may report in, and their conversion to the platform's canonical units.

Canonical units (what every stored row, statistic and model uses):

| quantity | canonical | also accepted (header suffix, case-insensitive) |
|---|---|---|
| pm25, pm10 | µg/m³ | ``ug/m3``, ``µg/m3``, ``ugm3``, ``mg/m3`` |
| so2, no2, co, o3 | µg/m³ | the above, and ``ppb``, ``ppm`` (converted at 25 °C, 1 atm) |
| temperature, dew_point | °C | ``C``, ``degC``, ``F``, ``degF``, ``K`` |
| pressure | hPa | ``mbar``, ``mb``, ``kPa``, ``Pa``, ``inHg``, ``mmHg`` |
| humidity (relative) | % | ``percent``, ``fraction`` (0–1) |
| rain | mm per hour | ``mm``, ``mm/h``, ``in``, ``in/h`` |
| wind_speed | m/s | ``mps``, ``km/h``, ``kph``, ``mph``, ``kn``, ``knots``, ``kt`` |
| wind_direction | degrees the wind blows from | ``deg``, ``degrees``; values may also be 16-point compass names |

A gas concentration in ppb is converted with its molar mass at 25 °C and 1 atm (molar volume
24.45 L): µg/m³ = ppb × M / 24.45; the AQI converts back the same way (``GAS_UG_PER_PPB``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

#: Molar volume of an ideal gas at 25 °C and 1 atm, litres per mole (the EPA's convention).
MOLAR_VOLUME_L = 24.45
#: Molar masses, g/mol.
MOLAR_MASS: dict[str, float] = {"no2": 46.0055, "so2": 64.066, "co": 28.010, "o3": 47.997}
#: µg/m³ per ppb of each gas at 25 °C, 1 atm (NO2 1.882, SO2 2.620, CO 1.146, O3 1.963).
GAS_UG_PER_PPB: dict[str, float] = {gas: mass / MOLAR_VOLUME_L for gas, mass in MOLAR_MASS.items()}

_MASS = {"ug/m3": 1.0, "mg/m3": 1000.0}
_TEMPERATURE = {"c": None, "f": lambda x: (x - 32.0) * 5.0 / 9.0, "k": lambda x: x - 273.15}
_PRESSURE = {"hpa": 1.0, "kpa": 10.0, "pa": 0.01, "inhg": 33.8639, "mmhg": 1.333224}
_HUMIDITY = {"%": 1.0, "fraction": 100.0}
_RAIN = {"mm": 1.0, "in": 25.4}
_WIND_SPEED = {"m/s": 1.0, "km/h": 1 / 3.6, "mph": 0.44704, "kn": 0.514444}
_DIRECTION = {"deg": 1.0}

#: Spellings of the same unit, mapped to one key (after lower-casing and removing spaces).
_SPELLINGS: dict[str, str] = {
    "µg/m3": "ug/m3", "µg/m³": "ug/m3", "ug/m³": "ug/m3", "ugm3": "ug/m3", "ug/m^3": "ug/m3",
    "μg/m3": "ug/m3", "μg/m³": "ug/m3", "microgram/m3": "ug/m3", "mg/m³": "mg/m3", "mgm3": "mg/m3",
    "°c": "c", "degc": "c", "celsius": "c", "°f": "f", "degf": "f", "fahrenheit": "f", "kelvin": "k",
    "mbar": "hpa", "mb": "hpa", "millibar": "hpa",
    "percent": "%", "pct": "%", "%rh": "%", "rh%": "%",
    "mm/h": "mm", "mm/hr": "mm", "mmh": "mm", "in/h": "in", "in/hr": "in", "inch": "in", "inches": "in",
    "mps": "m/s", "ms": "m/s", "m/sec": "m/s", "kph": "km/h", "kmh": "km/h", "km/hr": "km/h",
    "knots": "kn", "knot": "kn", "kt": "kn", "kts": "kn",
    "degrees": "deg", "degree": "deg", "°": "deg",
}  # fmt: skip


@dataclass(frozen=True)
class Conversion:
    """How values in ``unit`` become canonical values of ``column`` (``identity`` when no change)."""

    column: str
    unit: str
    canonical_unit: str
    convert: Callable[[np.ndarray], np.ndarray] | None = None

    @property
    def identity(self) -> bool:
        return self.convert is None

    def apply(self, values: np.ndarray) -> np.ndarray:
        return values if self.convert is None else self.convert(np.asarray(values, dtype=float))

    def describe(self) -> str:
        if self.identity:
            return f"{self.column} in {self.canonical_unit}"
        return f"{self.column}: {self.unit} → {self.canonical_unit}"


class UnitError(ValueError):
    """A unit the platform does not know for a column (the message lists the accepted ones)."""


def _scale(factor: float) -> Callable[[np.ndarray], np.ndarray] | None:
    return None if factor == 1.0 else (lambda x, f=factor: x * f)


def _table(column: str) -> tuple[str, dict]:
    """The canonical unit of ``column`` and its accepted units (key → factor or function)."""
    if column in ("pm25", "pm10"):
        return "µg/m³", dict(_MASS)
    if column in GAS_UG_PER_PPB:
        factor = GAS_UG_PER_PPB[column]
        return "µg/m³", {**_MASS, "ppb": factor, "ppm": 1000.0 * factor}
    if column in ("temperature", "dew_point"):
        return "°C", _TEMPERATURE
    if column == "pressure":
        return "hPa", _PRESSURE
    if column == "humidity":
        return "%", _HUMIDITY
    if column == "rain":
        return "mm/h", _RAIN
    if column == "wind_speed":
        return "m/s", _WIND_SPEED
    if column == "wind_direction":
        return "°", _DIRECTION
    raise UnitError(f"no units are defined for {column!r}")


def canonical_unit(column: str) -> str:
    return _table(column)[0]


def accepted_units(column: str) -> list[str]:
    """The unit names ``column`` accepts (one spelling each)."""
    return sorted(_table(column)[1])


def conversion(column: str, unit: str | None) -> Conversion:
    """The conversion of ``column`` values reported in ``unit`` (``None``: already canonical).

    Raises ``UnitError`` naming the column, the unit and the accepted units.
    """
    canonical, table = _table(column)
    if unit is None or not unit.strip():
        return Conversion(column, canonical, canonical)
    key = unit.strip().lower().replace(" ", "")
    key = _SPELLINGS.get(key, key)
    if key not in table:
        raise UnitError(
            f"unknown unit {unit!r} for {column} (canonical {canonical}); accepted: {', '.join(sorted(table))}"
        )
    how = table[key]
    convert = how if callable(how) or how is None else _scale(float(how))
    return Conversion(column, unit.strip(), canonical, convert)


def relative_humidity(temperature, dew_point) -> np.ndarray:
    """Relative humidity in % from air and dew-point temperature in °C (Magnus formula)."""
    a, b = 17.625, 243.04
    t = np.asarray(temperature, dtype=float)
    d = np.asarray(dew_point, dtype=float)
    return 100.0 * np.exp(a * d / (b + d) - a * t / (b + t))
