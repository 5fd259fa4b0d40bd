"""What a station network measures: its pollutants and covariates, extra columns, and their units.

A network is what its data says. Only ``timestamp``, ``station`` and at least one pollutant are
required; every other canonical column is optional. A column absent from every file is *not
measured*: it is listed once, never counted as missing and never fed to a model. A column present
but partly empty is *missing* where it is empty. Columns the platform does not know are kept as
received and reported as *extra*.

File headers are matched case-insensitively against the canonical names and common aliases
(``PM2.5``, ``TEMP``, ``RH``, ``WS``, ``wd``, ...; ``HEADER_ALIASES``), and may carry a unit:
``no2[ppb]``, ``no2 (ppb)`` or ``no2_ppb``. Values are converted to the canonical unit
(``aqi_assets.core.data.units``); a unit the platform does not know is an error naming the header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from aqi_assets.core.data.schema import COVARIATES, MEASUREMENTS, POLLUTANTS, STATION, TIMESTAMP
from aqi_assets.core.data.units import Conversion, UnitError, accepted_units, conversion

#: Header spellings (lower case) of each canonical column.
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    TIMESTAMP: ("timestamp", "datetime", "date_time", "time"),
    STATION: ("station", "station_id", "site", "site_id"),
    "pm25": ("pm25", "pm2.5", "pm2_5", "pm_2.5", "pm_25"),
    "pm10": ("pm10", "pm_10"),
    "so2": ("so2",),
    "no2": ("no2",),
    "co": ("co",),
    "o3": ("o3", "ozone"),
    "temperature": ("temperature", "temp", "air_temperature", "air_temp"),
    "pressure": ("pressure", "pres", "press", "air_pressure"),
    "dew_point": ("dew_point", "dewpoint", "dewp", "dew_point_temperature"),
    "humidity": ("humidity", "rh", "relative_humidity", "hum"),
    "rain": ("rain", "precipitation", "precip", "prcp", "rainfall"),
    "wind_speed": ("wind_speed", "windspeed", "ws", "wspd", "wspm"),
    "wind_direction": ("wind_direction", "winddirection", "wd", "wdir", "wind_dir"),
}
_ALIAS_TO_COLUMN: dict[str, str] = {alias: column for column, names in HEADER_ALIASES.items() for alias in names}
_PREFIXES = sorted(_ALIAS_TO_COLUMN, key=len, reverse=True)
_BRACKETED = re.compile(r"^(?P<name>.+?)\s*(?:\[(?P<b>[^\]]*)\]|\((?P<p>[^)]*)\))\s*$")


class HeaderError(ValueError):
    """A header the platform cannot read (unknown unit, two columns for one measurement, ...)."""


@dataclass(frozen=True)
class ColumnMap:
    """How one file's headers map to canonical columns: ``canonical[name] = (header, conversion)``."""

    canonical: dict[str, tuple[str, Conversion | None]]
    extra: tuple[str, ...] = ()

    @property
    def measured(self) -> tuple[str, ...]:
        return tuple(c for c in MEASUREMENTS if c in self.canonical)

    def header_of(self, column: str) -> str:
        return self.canonical[column][0]


def read_header(header: str) -> tuple[str | None, str | None]:
    """``(canonical column, unit)`` of one header; ``(None, None)`` for a column the platform does not know.

    Raises ``HeaderError`` when the header names a measurement with a unit the platform does not
    know (``no2[furlongs]``, ``no2_xyz``).
    """
    text = str(header).strip().strip('"').strip()
    match = _BRACKETED.match(text)
    if match:
        name, unit = match.group("name").strip().lower(), (match.group("b") or match.group("p") or "").strip()
        column = _ALIAS_TO_COLUMN.get(name)
        if column is None:
            return None, None
        return column, _checked_unit(header, column, unit)
    name = text.lower()
    if name in _ALIAS_TO_COLUMN:
        return _ALIAS_TO_COLUMN[name], None
    for prefix in _PREFIXES:
        if name.startswith(prefix + "_") and len(name) > len(prefix) + 1:
            column = _ALIAS_TO_COLUMN[prefix]
            return column, _checked_unit(header, column, text[len(prefix) + 1:])
    return None, None


def _checked_unit(header: str, column: str, unit: str) -> str | None:
    if column in (TIMESTAMP, STATION):
        if unit:
            raise HeaderError(f"header {header!r}: {column} takes no unit")
        return None
    if not unit:
        return None
    try:
        conversion(column, unit)
    except UnitError as exc:
        raise HeaderError(
            f"header {header!r}: {exc}. Write the unit as {column}[unit] with one of the accepted units "
            f"({', '.join(accepted_units(column))}), or give an extra column a name that does not start "
            f"with {column}_"
        ) from exc
    return unit


def map_headers(headers: list[str], where: str) -> ColumnMap:
    """Map one file's headers; ``where`` (the file) starts every error message."""
    canonical: dict[str, tuple[str, Conversion | None]] = {}
    extra: list[str] = []
    for header in headers:
        try:
            column, unit = read_header(header)
        except HeaderError as exc:
            raise HeaderError(f"{where}: {exc}") from exc
        if column is None:
            extra.append(str(header).strip())
            continue
        if column in canonical:
            raise HeaderError(
                f"{where}: headers {canonical[column][0]!r} and {header!r} both give {column}; keep one"
            )
        convert = None if column in (TIMESTAMP, STATION) else conversion(column, unit)
        canonical[column] = (str(header), convert)
    missing = [c for c in (TIMESTAMP, STATION) if c not in canonical]
    if missing:
        raise HeaderError(
            f"{where}: missing required column(s) {', '.join(missing)} (found: {', '.join(map(str, headers))}); "
            f"accepted names: " + "; ".join(f"{c}: {', '.join(HEADER_ALIASES[c])}" for c in missing)
        )
    return ColumnMap(canonical, tuple(extra))


@dataclass(frozen=True)
class Network:
    """The measurements a network has (canonical order), its extra columns and the unit conversions applied."""

    measured: tuple[str, ...]
    extra: tuple[str, ...] = ()
    conversions: tuple[str, ...] = field(default=())
    #: columns the files have without a single value: not measured (named so nobody wonders)
    empty: tuple[str, ...] = ()

    def __post_init__(self):
        unknown = [c for c in self.measured if c not in MEASUREMENTS]
        if unknown:
            raise ValueError(f"unknown measurement(s) {unknown}; known: {list(MEASUREMENTS)}")
        object.__setattr__(self, "measured", tuple(c for c in MEASUREMENTS if c in self.measured))
        if not self.pollutants:
            raise ValueError(
                f"a network must measure at least one pollutant ({', '.join(POLLUTANTS)}); "
                f"it measures only {', '.join(self.measured) or 'nothing'}"
            )

    @property
    def pollutants(self) -> tuple[str, ...]:
        return tuple(c for c in self.measured if c in POLLUTANTS)

    @property
    def covariates(self) -> tuple[str, ...]:
        return tuple(c for c in self.measured if c in COVARIATES)

    @property
    def not_measured(self) -> tuple[str, ...]:
        return tuple(c for c in MEASUREMENTS if c not in self.measured)

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns of a stored day: timestamp, station, the measurements, then the extra columns."""
        return (TIMESTAMP, STATION, *self.measured, *self.extra)

    def measures(self, column: str) -> bool:
        return column in self.measured

    def require_target(self, target: str) -> None:
        """Raise ``ValueError`` naming the target when the network does not measure it."""
        if target not in POLLUTANTS:
            raise ValueError(f"target {target!r} is not a pollutant; choose one of {', '.join(POLLUTANTS)}")
        if target in self.empty:
            raise ValueError(
                f"the target column {target!r} holds no value anywhere in this network's data (measured: "
                f"{', '.join(self.pollutants)}); set training.target to one of them"
            )
        if target not in self.measured:
            raise ValueError(
                f"target {target!r} is not measured by this network (it measures {', '.join(self.pollutants)}); "
                f"set training.target to one of them"
            )

    def describe(self) -> dict:
        return {"pollutants": list(self.pollutants), "covariates": list(self.covariates),
                "not_measured": list(self.not_measured), "empty_columns": list(self.empty),
                "extra_columns": list(self.extra), "unit_conversions": list(self.conversions)}

    def summary(self) -> str:
        """One line: what is measured, what is not, extras and conversions."""
        parts = [f"measures {', '.join(self.measured)}"]
        if self.not_measured:
            parts.append(f"not measured: {', '.join(self.not_measured)}")
        if self.empty:
            parts.append(f"columns without any value (treated as not measured): {', '.join(self.empty)}")
        if self.extra:
            parts.append(f"extra columns kept as received: {', '.join(self.extra)}")
        if self.conversions:
            parts.append(f"converted: {'; '.join(self.conversions)}")
        return "; ".join(parts)

    def to_dict(self) -> dict:
        return {"measured": list(self.measured), "extra": list(self.extra), "conversions": list(self.conversions),
                "empty": list(self.empty)}

    @classmethod
    def from_dict(cls, data: dict) -> "Network":
        return cls(tuple(data["measured"]), tuple(data.get("extra", ())), tuple(data.get("conversions", ())),
                   tuple(data.get("empty", ())))

    @classmethod
    def of_frame(cls, frame) -> "Network":
        """The network a stored frame shows: every canonical measurement column it has."""
        columns = set(map(str, frame.columns))
        extra = tuple(c for c in map(str, frame.columns) if c not in MEASUREMENTS and c not in (TIMESTAMP, STATION))
        return cls(tuple(c for c in MEASUREMENTS if c in columns), extra)
