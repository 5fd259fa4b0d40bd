"""``simulated:...``: the embedded default source, a seeded multi-station hourly city generator.

The generator mimics the structure of a heavily polluted northern city (Beijing is the model):

- **Regional weather** is continuous in time: seasonal and diurnal cycles plus synoptic
  variation built from sums of sinusoids with seeded periods and phases. A rising cold-air index
  raises pressure, lowers temperature and brings strong, dry northerly wind (a cold front);
  between fronts the air is weaker, southerly and more humid; slow "stirring" spells alternate
  windy and stagnant days.
- **Regional pollution** (PM2.5, NO2, SO2, CO) relaxes hour by hour towards inflow plus
  emissions over ventilation: it builds over days under stagnant southerly air, is swept out by
  northerly fronts and washed out by rain. The heating season raises PM2.5, SO2 and CO. Parcels
  of more and less polluted air ("plumes", hours to a day and a half long) ride on top.
- **Stations** lie on a city area (about 60 × 60 km for 12 stations, wider for more). A station at
  position ``x`` sees the regional pollution at ``t − (x·û)/|u|``: downwind stations see upwind
  changes hours later. Spatially correlated AR(1) noise (an exponential distance kernel) makes
  nearby stations agree more than distant ones. PM10, O3, rain, dew point and wind follow from
  the same state; instruments add scatter, occasional glitches, missing cells and outages.
- **Randomness** is keyed on (seed, stream, date ordinal) with ``numpy`` ``SeedSequence``, so a
  day reads the same in any process and call order. The regional state is integrated in fixed
  16-day blocks after a spin-up, and station noise replays the previous days' innovations, so
  consecutive days join smoothly at midnight.

Spec keys (after ``simulated:``, all optional): ``seed`` (int, 42), ``stations`` (int, 12),
``start`` (ISO date, 2024-01-01), ``end`` (ISO date; default yesterday in UTC), ``columns``
(the measurements the network has, joined by ``+``, e.g. ``pm25+humidity``, or ``all``; default
the 13 of the Beijing network: every measurement but ``humidity``) and ``scenario``
(``name@YYYY-MM-DD[@station][@magnitude]``, several joined by ``+``). Relative humidity follows
from temperature and dew point; wind direction is reported in degrees. Scenarios, with their
magnitude and its default:

- ``sensor_recalibration`` (gain, 1.5): from the start day one station's pollutant readings become
  ``gain·x + 16·(gain − 1)`` (×1.5 + 8 by default); the station defaults to the first one.
- ``emissions_trend`` (% per 30 days, 10): primary pollutants grow geometrically from the start.
- ``weather_regime`` (factor, 2.5): temperature and wind deviations from their seasonal means are
  multiplied by the factor; pollution follows the changed ventilation.
- ``smoke_episode`` (peak µg/m³, 250): a smoke plume arriving within hours of the start day that
  adds up to that much PM2.5 (more PM10 and CO) and decays over a few days.

Every scenario acts from 00:00 of its start day; earlier days are bit-identical to the same
source without it.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd

from aqi_assets.core.data.network import Network
from aqi_assets.core.data.schema import MEASUREMENTS, POLLUTANTS, STATION, TIMESTAMP
from aqi_assets.core.data.sources.base import ObservationSource, SourceError
from aqi_assets.core.data.units import relative_humidity

SCENARIOS: tuple[str, ...] = ("sensor_recalibration", "emissions_trend", "weather_regime", "smoke_episode")
DEFAULT_MAGNITUDES: dict[str, float] = {
    "sensor_recalibration": 1.5,
    "emissions_trend": 10.0,
    "weather_regime": 2.5,
    "smoke_episode": 250.0,
}
MAGNITUDE_MEANINGS: dict[str, str] = {
    "sensor_recalibration": "a reading gain > 0",
    "emissions_trend": "a growth in % per 30 days > -100",
    "weather_regime": "a factor on temperature and wind deviations > 0",
    "smoke_episode": "a peak PM2.5 increase in µg/m³ >= 0",
}
SPEC_KEYS: tuple[str, ...] = ("seed", "stations", "start", "end", "columns", "scenario")
#: The measurements of the default simulated network (Beijing's: everything but humidity).
DEFAULT_COLUMNS: tuple[str, ...] = tuple(c for c in MEASUREMENTS if c != "humidity")
MAX_STATIONS = 5000

_EPOCH_ORDINAL = date(2000, 1, 1).toordinal()  # hours are counted from 2000-01-01 00:00
_DAYS_PER_YEAR = 365.2425
_TWO_PI = 2.0 * math.pi
_CENTRE_LAT, _CENTRE_LON = 39.95, 116.40
_KM_PER_DEG_LAT = 111.2

_BLOCK_DAYS = 16  # the regional state is integrated per block of days ...
_SPINUP_DAYS = 6  # ... starting this many days before the block
_REPLAY_DAYS = 3  # station noise replays this many days before the one asked for
_MAX_LAG_HOURS = 12.0  # cap on the transport delay between the centre and a station
_BLOCK_CACHE = 6
_DAY_CACHE = 8

# Seed-sequence stream ids: changing them changes every generated day.
_STREAM_LAYOUT, _STREAM_MODES, _STREAM_INNOVATION, _STREAM_INITIAL, _STREAM_INSTRUMENT, _STREAM_MISSING = (
    range(1, 7)
)

# Slow regional variation: (name, number of sinusoids, shortest and longest period in hours).
_MODES: tuple[tuple[str, int, float, float], ...] = (
    ("cold", 16, 60.0, 320.0),  # synoptic cold-air / pressure index
    ("warm", 10, 72.0, 500.0),  # warm and cold spells independent of pressure
    ("wind_u", 12, 18.0, 200.0),
    ("wind_v", 12, 18.0, 200.0),
    ("stirring", 10, 48.0, 260.0),  # windy versus stagnant spells
    ("front_veer", 8, 60.0, 320.0),  # whether a front comes from the north-west or north-east
    ("moist", 10, 24.0, 240.0),  # humidity of the air mass
    ("precip", 16, 5.0, 72.0),  # convective and frontal rain
    ("activity", 8, 24.0, 240.0),  # emission activity
    ("dust", 8, 12.0, 120.0),  # wind-blown dust
    ("plumes", 16, 4.0, 36.0),  # polluted and cleaner air parcels carried across the city
)
_MODE_INDEX = {name: i for i, (name, *_rest) in enumerate(_MODES)}

# Station noise streams (unit variance) and their hourly AR(1) coefficients.
_NOISE = ("pm", "co", "no2", "so2", "o3", "coarse", "temperature", "wind_u", "wind_v", "precip", "depression")
_NOISE_INDEX = {name: i for i, name in enumerate(_NOISE)}
_NOISE_PHI = np.array([0.88, 0.9, 0.85, 0.9, 0.85, 0.8, 0.92, 0.8, 0.8, 0.75, 0.9])

_SPECIES = ("pm25", "no2", "so2", "co")  # integrated by the regional relaxation model

# Instruments: log-normal scatter per pollutant, plus rare larger glitches.
_SCATTER = {"pm25": 0.05, "pm10": 0.07, "so2": 0.06, "no2": 0.05, "co": 0.05, "o3": 0.05}
_GLITCH_SHARE, _GLITCH_SCATTER = 0.05, 0.3

# Missing readings: per-cell probability by column, and whole-instrument outages per station-day.
_CELL_MISSING: dict[str, float] = {
    "pm25": 0.015, "pm10": 0.012, "so2": 0.018, "no2": 0.02, "co": 0.03, "o3": 0.02,
    "temperature": 0.002, "pressure": 0.002, "dew_point": 0.002, "rain": 0.002, "wind_speed": 0.002,
}  # fmt: skip
_POLLUTANT_OUTAGE_PER_DAY = 0.035
_WEATHER_OUTAGE_PER_DAY = 0.008
_OUTAGE_HOURS = (2, 13)  # length drawn from [low, high)

# Recalibrated readings: gain·x + offset·(gain − 1).
_RECALIBRATION_OFFSET = 16.0
# Smoke plume: rises with a 3 h time constant, decays with 36 h; carries PM10 and CO with it.
_SMOKE_RISE_H, _SMOKE_DECAY_H = 3.0, 36.0
_SMOKE_PEAK_H = _SMOKE_RISE_H * math.log1p(_SMOKE_DECAY_H / _SMOKE_RISE_H)
_SMOKE_NORM = (1 - math.exp(-_SMOKE_PEAK_H / _SMOKE_RISE_H)) * math.exp(-_SMOKE_PEAK_H / _SMOKE_DECAY_H)
_SMOKE_COARSE_PER_PM25, _SMOKE_CO_PER_PM25 = 0.15, 12.0


@dataclass(frozen=True)
class DriftScenario:
    """A change in the generated data from 00:00 of ``start`` on (see the module docstring)."""

    name: str
    start: date
    station: str | None = None
    magnitude: float | None = None

    def __post_init__(self) -> None:
        if self.name not in SCENARIOS:
            raise SourceError(
                f"simulated source: unknown scenario {self.name!r}; expected one of {', '.join(SCENARIOS)}"
            )
        if not isinstance(self.start, date) or isinstance(self.start, datetime):
            raise SourceError(f"simulated source: scenario {self.name} start must be a date, got {self.start!r}")
        if self.station is not None and self.name != "sensor_recalibration":
            raise SourceError(f"simulated source: scenario {self.name} takes no station (only sensor_recalibration)")
        if self.magnitude is not None and not _magnitude_ok(self.name, self.magnitude):
            raise SourceError(
                f"simulated source: scenario {self.name} magnitude {self.magnitude!r} is invalid; "
                f"expected {MAGNITUDE_MEANINGS[self.name]}"
            )

    @property
    def strength(self) -> float:
        """The magnitude in effect: the given one, else the scenario's default."""
        return DEFAULT_MAGNITUDES[self.name] if self.magnitude is None else float(self.magnitude)

    def spec_token(self) -> str:
        """``name@YYYY-MM-DD[@station][@magnitude]``, as ``scenario=`` accepts it."""
        parts = [self.name, self.start.isoformat()]
        if self.station is not None:
            parts.append(self.station)
        if self.magnitude is not None:
            parts.append(_format_number(float(self.magnitude)))
        return "@".join(parts)


class SimulatedSource(ObservationSource):
    """A seeded city of ``n_stations`` stations with hourly pollutant and weather readings."""

    def __init__(
        self,
        seed: int = 42,
        n_stations: int = 12,
        start: date = date(2024, 1, 1),
        end: date | None = None,
        scenarios: Sequence[DriftScenario] = (),
        columns: Sequence[str] = DEFAULT_COLUMNS,
    ):
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise SourceError(f"simulated source: seed must be an integer >= 0, got {seed!r}")
        if isinstance(n_stations, bool) or not isinstance(n_stations, (int, np.integer)) \
                or not 1 <= n_stations <= MAX_STATIONS:
            raise SourceError(f"simulated source: stations must be an integer in 1..{MAX_STATIONS}, got {n_stations!r}")
        start = _plain_date(start, "start")
        end = None if end is None else _plain_date(end, "end")
        if end is not None and end < start:
            raise SourceError(f"simulated source: end {end} is before start {start}")
        self.seed = int(seed)
        self.n_stations = int(n_stations)
        self.start = start
        self.end = end
        self.scenarios: tuple[DriftScenario, ...] = tuple(scenarios)
        try:
            self._network = Network(tuple(columns))
        except ValueError as exc:
            raise SourceError(f"simulated source: columns: {exc}") from exc

        width = max(4, len(str(self.n_stations)))
        self._station_ids = np.array([f"S{i + 1:0{width}d}" for i in range(self.n_stations)], dtype=object)
        self._recalibrated: dict[DriftScenario, int] = {}
        for scenario in self.scenarios:
            if not isinstance(scenario, DriftScenario):
                raise SourceError(f"simulated source: scenarios must be DriftScenario objects, got {scenario!r}")
            if scenario.name == "sensor_recalibration":
                self._recalibrated[scenario] = self._station_index(scenario.station or self._station_ids[0])

        parts = [f"seed={self.seed}", f"stations={self.n_stations}", f"start={self.start.isoformat()}"]
        if self.end is not None:
            parts.append(f"end={self.end.isoformat()}")
        if self._network.measured != DEFAULT_COLUMNS:
            parts.append("columns=" + "+".join(self._network.measured))
        if self.scenarios:
            parts.append("scenario=" + "+".join(s.spec_token() for s in self.scenarios))
        self.spec = "simulated:" + ",".join(parts)

        self._layout = _StationLayout(self.seed, self.n_stations)
        self._modes = _RegionalModes(self.seed)
        self._cholesky: np.ndarray | None = None
        self._blocks: OrderedDict[tuple, dict[str, np.ndarray]] = OrderedDict()
        self._innovations: OrderedDict[int, np.ndarray] = OrderedDict()

    def _station_index(self, station: str) -> int:
        ids = self._station_ids
        width = len(ids[0]) - 1
        if not (isinstance(station, str) and station[:1] == "S" and station[1:].isdigit()
                and len(station) == width + 1 and 1 <= int(station[1:]) <= self.n_stations):
            raise SourceError(
                f"simulated source: scenario sensor_recalibration names station {station!r}; "
                f"expected one of {ids[0]}..{ids[-1]}"
            )
        return int(station[1:]) - 1

    @classmethod
    def from_spec(cls, rest: str) -> SimulatedSource:
        """Build from what follows ``simulated:`` in ``AQI_SOURCE`` (``""`` gives every default)."""
        values: dict[str, str] = {}
        for item in (rest or "").split(","):
            if not item.strip():
                continue
            key, eq, value = (part.strip() for part in item.partition("="))
            if not eq:
                raise SourceError(
                    f"simulated source: {item.strip()!r} is not key=value; keys are {', '.join(SPEC_KEYS)}"
                )
            if key not in SPEC_KEYS:
                raise SourceError(f"simulated source: unknown key {key!r}; expected one of {', '.join(SPEC_KEYS)}")
            if key in values:
                raise SourceError(f"simulated source: key {key!r} is given twice")
            values[key] = value
        kwargs: dict = {}
        if "seed" in values:
            kwargs["seed"] = _parse_int("seed", values["seed"], 0, None)
        if "stations" in values:
            kwargs["n_stations"] = _parse_int("stations", values["stations"], 1, MAX_STATIONS)
        if "start" in values:
            kwargs["start"] = _parse_date("start", values["start"])
        if "end" in values:
            kwargs["end"] = _parse_date("end", values["end"])
        if "scenario" in values:
            kwargs["scenarios"] = parse_scenarios(values["scenario"])
        if "columns" in values:
            kwargs["columns"] = _parse_columns(values["columns"])
        return cls(**kwargs)

    # ------------------------------------------------------------------ interface

    def stations(self) -> pd.DataFrame:
        return pd.DataFrame({
            STATION: self._station_ids.copy(),
            "latitude": self._layout.latitude.copy(),
            "longitude": self._layout.longitude.copy(),
        })

    def network(self) -> Network:
        return self._network

    @property
    def is_live(self) -> bool:
        """Without ``end`` the source keeps producing a new day every midnight (UTC)."""
        return self.end is None

    def first_day(self) -> date:
        return self.start

    def last_day(self) -> date | None:
        if self.end is not None:
            return self.end
        yesterday = datetime.now(timezone.utc).date() - timedelta(days=1)
        return yesterday if yesterday >= self.start else None

    def read_day(self, day: date) -> pd.DataFrame:
        day = _plain_date(day, "day")
        last = self.last_day()
        if last is None:
            raise SourceError(f"simulated source has no days yet (it starts on {self.start}); {day} was asked for")
        if not self.start <= day <= last:
            raise SourceError(f"simulated source covers {self.start}..{last}; {day} is outside that range")
        return self._generate_day(day)

    # ----------------------------------------------------------------- generation

    def _generate_day(self, day: date) -> pd.DataFrame:
        active = [s for s in self.scenarios if s.start <= day]
        regimes = tuple(sorted((s.start.toordinal(), s.strength) for s in active if s.name == "weather_regime"))
        regime = math.prod(m for _, m in regimes)

        first_hour = (day.toordinal() - _EPOCH_ORDINAL) * 24
        pad = int(_MAX_LAG_HOURS) + 2
        series = self._regional_series(first_hour - pad, first_hour + 24 + pad, regimes)
        regional = {key: values[pad:pad + 24, None] for key, values in series.items()}  # (24, 1) each
        hours = first_hour + np.arange(24.0)[:, None]
        noise = self._station_noise(day.toordinal())
        layout = self._layout

        # A station downwind of the centre sees the regional pollution of ``lag`` hours earlier.
        u, v, speed = regional["u"], regional["v"], regional["speed"]
        downwind_km = (layout.x_km * u + layout.y_km * v) / speed
        lag = np.clip(downwind_km / (3.6 * np.maximum(speed, 0.7)), -_MAX_LAG_HOURS, _MAX_LAG_HOURS)
        upstream = _Interpolator(series, hours - lag - (first_hour - pad))

        true, pm_noise = _station_pollutants(upstream, regional, layout, noise)
        weather, direction_code = _station_weather(regional, layout, noise, regime)
        for scenario in (s for s in active if s.name == "emissions_trend"):
            elapsed_days = (hours - _start_hour(scenario)) / 24.0
            growth = (1.0 + scenario.strength / 100.0) ** (elapsed_days / 30.0)
            for name in ("pm25", "coarse", "so2", "no2", "co"):
                true[name] = true[name] * growth
        for scenario in (s for s in active if s.name == "smoke_episode"):
            plume = _smoke_shape(hours - lag - _start_hour(scenario))  # carried by the wind like the rest
            smoke = scenario.strength * plume * layout.factor["pm25"] * pm_noise
            true["pm25"] = true["pm25"] + smoke
            true["coarse"] = true["coarse"] + _SMOKE_COARSE_PER_PM25 * smoke
            true["co"] = true["co"] + _SMOKE_CO_PER_PM25 * smoke
        true["pm10"] = true["pm25"] + true.pop("coarse")

        readings = self._instrument_readings(day, true)
        for scenario in active:
            if scenario.name == "sensor_recalibration":
                i, gain = self._recalibrated[scenario], scenario.strength
                for name in POLLUTANTS:
                    readings[name][:, i] = gain * readings[name][:, i] + _RECALIBRATION_OFFSET * (gain - 1.0)
        for name in POLLUTANTS:
            readings[name] = np.round(readings[name], 0 if name == "co" else 1)
        readings["temperature"] = np.round(weather["temperature"], 1)
        readings["dew_point"] = np.minimum(np.round(weather["dew_point"], 1), readings["temperature"])
        for name in ("pressure", "rain", "wind_speed"):
            readings[name] = np.round(weather[name], 1)
        return self._frame(day, readings, direction_code)

    def _instrument_readings(self, day: date, true: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """True pollutant concentrations as the instruments report them (scatter and glitches)."""
        rng = _rng(self.seed, _STREAM_INSTRUMENT, day.toordinal())
        shape = (len(POLLUTANTS), 24, self.n_stations)
        scatter = rng.standard_normal(shape) * np.array([_SCATTER[p] for p in POLLUTANTS])[:, None, None]
        glitch = (rng.random(shape) < _GLITCH_SHARE) * rng.standard_normal(shape) * _GLITCH_SCATTER
        factor = np.exp(scatter + glitch)
        return {name: true[name] * factor[k] for k, name in enumerate(POLLUTANTS)}

    def _frame(self, day: date, readings: dict[str, np.ndarray], direction_code: np.ndarray) -> pd.DataFrame:
        """The canonical long frame, with missing cells and instrument outages blanked out."""
        n = self.n_stations
        rng = _rng(self.seed, _STREAM_MISSING, day.toordinal())
        cells = rng.random((len(_CELL_MISSING), 24, n))
        hour = np.arange(24)[:, None]
        outages = []
        for probability in (_POLLUTANT_OUTAGE_PER_DAY, _WEATHER_OUTAGE_PER_DAY):
            hit = rng.random(n) < probability
            first = rng.integers(0, 24, n)
            length = rng.integers(*_OUTAGE_HOURS, n)
            outages.append(hit & (hour >= first) & (hour < first + length))
        pollutant_outage, weather_outage = outages
        for k, (name, share) in enumerate(_CELL_MISSING.items()):
            readings[name][(cells[k] < share) | (pollutant_outage if name in POLLUTANTS else weather_outage)] = np.nan
        direction = direction_code * 22.5
        direction[np.isnan(readings["wind_speed"])] = np.nan
        readings["wind_direction"] = direction
        readings["humidity"] = np.round(relative_humidity(readings["temperature"], readings["dew_point"]), 1)

        stamps = np.datetime64(day.isoformat(), "ns") + np.arange(24) * np.timedelta64(1, "h")
        frame = pd.DataFrame({
            TIMESTAMP: stamps.repeat(n),
            STATION: np.tile(self._station_ids, 24),
            **{name: readings[name].reshape(-1) for name in self._network.measured},
        })
        return frame

    # -------------------------------------------------------------- regional state

    def _regional_series(self, first_hour: int, end_hour: int, regimes: tuple) -> dict[str, np.ndarray]:
        """Regional fields for hours ``first_hour`` .. ``end_hour - 1`` (hours since 2000-01-01)."""
        block_hours = _BLOCK_DAYS * 24
        spinup_hours = _SPINUP_DAYS * 24
        pieces = []
        for block in range(first_hour // block_hours, (end_hour - 1) // block_hours + 1):
            owned = block * block_hours
            lo = max(first_hour, owned) - owned + spinup_hours
            hi = min(end_hour, owned + block_hours) - owned + spinup_hours
            pieces.append({key: values[lo:hi] for key, values in self._block(block, regimes).items()})
        if len(pieces) == 1:
            return pieces[0]
        return {key: np.concatenate([piece[key] for piece in pieces]) for key in pieces[0]}

    def _block(self, block: int, regimes: tuple) -> dict[str, np.ndarray]:
        """One block of regional fields, integrated from its spin-up (cached per instance)."""
        key = (block, regimes)
        cached = self._blocks.get(key)
        if cached is not None:
            self._blocks.move_to_end(key)
            return cached
        hours = np.arange((block * _BLOCK_DAYS - _SPINUP_DAYS) * 24, (block + 1) * _BLOCK_DAYS * 24, dtype=float)
        factor = np.ones_like(hours)
        for start_ordinal, magnitude in regimes:
            factor = np.where(hours >= (start_ordinal - _EPOCH_ORDINAL) * 24, factor * magnitude, factor)
        data = _regional_fields(hours, self._modes, factor)
        self._blocks[key] = data
        if len(self._blocks) > _BLOCK_CACHE:
            self._blocks.popitem(last=False)
        return data

    # --------------------------------------------------------------- station noise

    def _station_noise(self, ordinal: int) -> np.ndarray:
        """Unit-variance, spatially correlated AR(1) noise of one day: (streams, 24, stations).

        The state at the day's start comes from replaying the previous days' innovations from a
        stationary draw, so a day reads the same whatever was generated before it.
        """
        first = ordinal - _REPLAY_DAYS
        white = _rng(self.seed, _STREAM_INITIAL, first).standard_normal((len(_NOISE), self.n_stations))
        state = self._correlate(white)
        phi = _NOISE_PHI[:, None]
        scale = np.sqrt(1.0 - _NOISE_PHI**2)[:, None]
        for day_ordinal in range(first, ordinal):
            shocks = self._day_innovations(day_ordinal)
            for h in range(24):
                state = phi * state + scale * shocks[:, h]
        shocks = self._day_innovations(ordinal)
        out = np.empty_like(shocks)
        for h in range(24):
            state = phi * state + scale * shocks[:, h]
            out[:, h] = state
        return out

    def _day_innovations(self, ordinal: int) -> np.ndarray:
        cached = self._innovations.get(ordinal)
        if cached is not None:
            self._innovations.move_to_end(ordinal)
            return cached
        shape = (len(_NOISE), 24, self.n_stations)
        white = _rng(self.seed, _STREAM_INNOVATION, ordinal).standard_normal(shape)
        shocks = self._correlate(white.reshape(-1, self.n_stations)).reshape(shape)
        self._innovations[ordinal] = shocks
        if len(self._innovations) > _DAY_CACHE:
            self._innovations.popitem(last=False)
        return shocks

    def _correlate(self, white: np.ndarray) -> np.ndarray:
        """Rows of independent normals -> rows correlated across stations by the distance kernel."""
        if self._cholesky is None:
            self._cholesky = self._layout.kernel_cholesky()
        return white @ self._cholesky.T


class _Interpolator:
    """Linear interpolation of hourly series at fractional positions (an index into the series)."""

    def __init__(self, series: dict[str, np.ndarray], position: np.ndarray):
        self.series = series
        self.low = np.floor(position).astype(np.int64)
        self.frac = position - self.low

    def __call__(self, key: str) -> np.ndarray:
        values = self.series[key]
        return values[self.low] * (1.0 - self.frac) + values[self.low + 1] * self.frac


def _station_pollutants(upstream: _Interpolator, regional: dict, layout: _StationLayout, noise: np.ndarray):
    """True concentrations per (hour, station), and the PM noise factor smoke shares."""

    def eta(name: str) -> np.ndarray:
        return noise[_NOISE_INDEX[name]]

    # Log-normal factors with unit mean: exp(s·eta − s²/2).
    pm_noise = np.exp(0.27 * eta("pm") - 0.036)
    no2 = upstream("no2") * layout.factor["no2"] * np.exp(0.22 * eta("no2") - 0.024)
    true = {
        "pm25": upstream("pm25") * layout.factor["pm25"] * pm_noise,
        "co": upstream("co") * layout.factor["co"] * np.exp(0.2 * (0.7 * eta("pm") + 0.714 * eta("co")) - 0.02),
        "no2": no2,
        "so2": upstream("so2") * layout.factor["so2"] * np.exp(0.3 * eta("so2") - 0.045),
        # Ozone is produced regionally and titrated by local NO.
        "o3": regional["o3"] * layout.factor["o3"] * np.exp(0.2 * eta("o3") - 0.02) * (100.0 / (100.0 + 0.6 * no2)),
        "coarse": regional["coarse"] * layout.factor["pm10"] * np.exp(0.35 * eta("coarse") - 0.06),
    }
    return true, pm_noise


def _station_weather(regional: dict, layout: _StationLayout, noise: np.ndarray, regime: float):
    """Weather per (hour, station), and the 16-point code of where the wind blows from."""

    def eta(name: str) -> np.ndarray:
        return noise[_NOISE_INDEX[name]]

    temperature = (regional["t_clim"] + layout.temperature_offset + regional["t_anom"]
                   + regime * 0.7 * eta("temperature"))
    depression = 1.5 * np.logaddexp(0.0, (regional["depression"] + 1.2 * eta("depression")) / 1.5)
    excess = np.maximum(regional["precip"] + 0.55 * eta("precip") - regional["rain_threshold"], 0.0)
    wind_u = regional["u"] + regime * 0.55 * eta("wind_u")
    wind_v = regional["v"] + regime * 0.55 * eta("wind_v")
    bearing = np.degrees(np.arctan2(-wind_u, -wind_v)) % 360.0
    weather = {
        "temperature": temperature,
        "dew_point": temperature - depression,
        "pressure": regional["pressure"] + layout.pressure_offset,
        "rain": 5.0 * excess**1.5,
        "wind_speed": layout.shelter * regional["gustiness"] * np.hypot(wind_u, wind_v),
    }
    return weather, np.rint(bearing / 22.5).astype(np.int64) % 16


# ------------------------------------------------------------------------ station layout


class _StationLayout:
    """Station positions (km east/north of the centre), coordinates and fixed per-station factors."""

    CORRELATION_KM = 25.0  # e-folding distance of the noise kernel
    NUGGET = 0.2  # share of each station's noise that no other station shares

    def __init__(self, seed: int, n: int):
        rng = _rng(seed, _STREAM_LAYOUT)
        half_width = 30.0 * max(1.0, n / 12.0) ** 0.25
        xy = rng.uniform(-half_width, half_width, (n, 2))
        self.x_km, self.y_km = xy[:, 0].copy(), xy[:, 1].copy()
        self.latitude = np.round(_CENTRE_LAT + self.y_km / _KM_PER_DEG_LAT, 4)
        self.longitude = np.round(
            _CENTRE_LON + self.x_km / (_KM_PER_DEG_LAT * math.cos(math.radians(_CENTRE_LAT))), 4
        )
        urban = np.exp(-(self.x_km**2 + self.y_km**2) / (2 * (0.5 * half_width) ** 2))  # 1 at the centre
        jitter = rng.standard_normal((9, n))
        self.factor = {
            "pm25": (0.8 + 0.35 * urban) * np.exp(0.08 * jitter[0]),
            "co": (0.75 + 0.45 * urban) * np.exp(0.1 * jitter[1]),
            "no2": (0.6 + 0.7 * urban) * np.exp(0.15 * jitter[2]),
            "so2": (0.85 + 0.3 * urban) * np.exp(0.2 * jitter[3]),
            "o3": (1.1 - 0.2 * urban) * np.exp(0.08 * jitter[4]),
            "pm10": (0.8 + 0.4 * urban) * np.exp(0.15 * jitter[5]),
        }
        self.temperature_offset = 1.2 * urban - 0.5 + 0.3 * jitter[6]  # urban heat island
        self.pressure_offset = 2.0 * jitter[7]  # station elevation
        self.shelter = 0.7 * (1.15 - 0.3 * urban) * np.exp(0.2 * jitter[8])  # anemometer exposure

    def kernel_cholesky(self) -> np.ndarray:
        distance = np.hypot(self.x_km[:, None] - self.x_km, self.y_km[:, None] - self.y_km)
        kernel = (1.0 - self.NUGGET) * np.exp(-distance / self.CORRELATION_KM)
        kernel[np.diag_indices_from(kernel)] = 1.0
        return _cholesky(kernel)


def _cholesky(matrix: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor, single-threaded: the same bits in every process, and no stalls of
    threaded LAPACK on a busy CPU (seconds instead of milliseconds for 1,000 stations)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - installed with scikit-learn, which MLflow requires
        return np.linalg.cholesky(matrix)
    with threadpool_limits(limits=1, user_api="blas"):
        return np.linalg.cholesky(matrix)


# ----------------------------------------------------------------------- regional physics


class _RegionalModes:
    """Unit-variance sums of seeded sinusoids: smooth regional variation computable at any hour."""

    def __init__(self, seed: int):
        rng = _rng(seed, _STREAM_MODES)
        omegas, phases, amplitudes, columns = [], [], [], []
        for column, (_name, count, shortest, longest) in enumerate(_MODES):
            periods = np.exp(rng.uniform(math.log(shortest), math.log(longest), count))
            amplitude = np.sqrt(periods) * rng.uniform(0.6, 1.0, count)  # slower swings are larger
            omegas.append(_TWO_PI / periods)
            phases.append(rng.uniform(0.0, _TWO_PI, count))
            amplitudes.append(amplitude * math.sqrt(2.0 / float(np.sum(amplitude**2))))
            columns.append(np.full(count, column))
        self.omega = np.concatenate(omegas)
        self.phase = np.concatenate(phases)
        amplitude, column = np.concatenate(amplitudes), np.concatenate(columns)
        self.weights = np.zeros((len(self.omega), len(_MODES)))
        self.weights[np.arange(len(self.omega)), column] = amplitude
        rate = np.where(column == _MODE_INDEX["cold"], amplitude * self.omega, 0.0)
        self.rate_weights = rate * math.sqrt(2.0 / float(np.sum(rate**2)))

    def evaluate(self, hours: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Modes at ``hours`` as (hours, modes), and the unit-variance rate of the cold-air index."""
        angle = np.multiply.outer(hours, self.omega) + self.phase
        return np.sin(angle) @ self.weights, np.cos(angle) @ self.rate_weights


def _regional_fields(hours: np.ndarray, modes: _RegionalModes, regime: np.ndarray) -> dict[str, np.ndarray]:
    """Every regional field at consecutive ``hours`` (since 2000-01-01), pollution integrated forward.

    ``regime`` multiplies temperature and wind deviations from their seasonal means, hour by hour.
    """
    mode, cold_rate = modes.evaluate(hours)

    def m(name: str) -> np.ndarray:
        return mode[:, _MODE_INDEX[name]]

    year = hours / (24.0 * _DAYS_PER_YEAR)
    hour = np.mod(hours, 24.0)
    season = np.cos(_TWO_PI * (year - 19 / _DAYS_PER_YEAR))  # +1 in mid-January, -1 in mid-July
    summer = 0.5 * (1.0 - season)
    heating = _logistic((np.cos(_TWO_PI * (year - 13 / _DAYS_PER_YEAR)) - 0.5) / 0.07)  # mid-Nov..mid-Mar
    spring = np.exp(3.0 * (np.cos(_TWO_PI * (year - 0.28)) - 1.0))
    front = np.maximum(cold_rate - 0.3, 0.0)  # pressure rising fast: a cold front is passing

    rain_threshold = 2.1 + 0.55 * season - 0.25 * np.cos(_TWO_PI * (year - 0.62))
    precip = 0.85 * m("precip") - 0.35 * m("cold")
    wet = _logistic((precip - rain_threshold) / 0.3)

    t_clim = 13.0 - 14.0 * season
    t_anom = regime * (4.4 * (1.0 - 0.45 * wet) * _cycle(hour, 15.0)
                       - 3.0 * m("cold") + 2.0 * m("warm") - 1.0 * front)
    pressure = 1011.0 + 10.5 * season + 5.5 * m("cold") + 0.7 * np.cos(_TWO_PI * (hour - 10.0) / 12.0)

    # Wind (m/s, the direction it blows towards): prevailing north-westerly in winter, southerly in
    # summer, a valley breeze (southerly afternoons), fronts from the north, stagnant spells.
    u0, v0 = 0.5 * season, 0.2 - 0.8 * season
    stirring = np.exp(0.45 * m("stirring"))
    u = u0 + regime * (1.1 * stirring * m("wind_u") + (0.8 + 1.2 * m("front_veer")) * front)
    v = v0 + regime * (1.1 * stirring * m("wind_v") - 3.5 * front + 0.7 * _cycle(hour, 15.0))
    speed = np.sqrt(u * u + v * v + 0.09)
    southerly = _logistic(v / 0.8)

    depression = (10.5 + 2.5 * season + 3.5 * np.cos(_TWO_PI * (year - 0.30)) + 3.5 * _cycle(hour, 15.0)
                  + 2.8 * m("moist") + 2.0 * front - 5.0 * wet - 1.5 * southerly)  # temperature − dew point
    humid = _logistic((6.0 - depression) / 2.0)

    # Relaxation model: each hour c → target + (c − target)·exp(−loss), target = inflow + emission/loss.
    weekday = np.mod(np.floor(hours / 24.0) + 5.0, 7.0)  # 2000-01-01 was a Saturday; Monday = 0
    traffic = (0.55 + 0.6 * _von_mises(hour, 8.0, 6.0) + 0.6 * _von_mises(hour, 18.5, 5.0)
               + 0.3 * _von_mises(hour, 13.0, 1.5)) * np.where(weekday >= 5.0, 0.88, 1.0)
    activity = np.exp(0.2 * m("activity"))
    ventilation = 0.012 + 0.014 * speed**2 * (1.0 + 0.5 * _cycle(hour, 14.0))
    emission = np.stack([
        1.8 * (1.0 + 2.0 * heating) * (0.7 + 0.35 * traffic) * activity * (1.0 + humid),  # PM2.5
        4.2 * (1.0 + 0.6 * heating) * traffic * activity,  # NO2
        0.25 + 1.4 * heating * activity,  # SO2: coal heating
        40.0 * (1.0 + heating) * (0.6 + 0.45 * traffic) * activity,  # CO
    ], axis=1)
    inflow = np.stack([
        3.0 + 30.0 * (1.0 + 0.8 * heating) * southerly,
        5.0 + 10.0 * southerly,
        1.0 + (1.0 + 5.0 * heating) * southerly,
        200.0 + 300.0 * (1.0 + heating) * southerly,
    ], axis=1)
    photolysis = _von_mises(hour, 13.0, 2.0)
    chemistry = np.stack([0.3 * wet, 0.05 * wet + 0.08 * photolysis + 0.03, 0.2 * wet + 0.01, 0.0 * wet], axis=1)
    loss = ventilation[:, None] + chemistry
    concentration = _relax(inflow + emission / loss, np.exp(-loss))
    # A shallow night-time boundary layer concentrates surface readings; parcels of more or less
    # polluted air pass through (the series is read at each station's transport delay).
    concentration *= 1.0 + np.multiply.outer(_cycle(hour, 22.0), np.array([0.1, 0.2, 0.0, 0.1]))
    plume_scale = np.array([0.2, 0.12, 0.15, 0.15])
    concentration *= np.exp(np.multiply.outer(m("plumes"), plume_scale) - plume_scale**2 / 2)

    sunlight = (_von_mises(hour, 14.0, 2.5) + 0.6 * _von_mises(hour, 17.5, 2.5)) / 1.6
    o3 = ((70.0 + 115.0 * summer + 2.0 * np.maximum(t_clim + t_anom - 20.0, 0.0)) * (0.35 + 1.1 * sunlight)
          / (1.0 + concentration[:, 0] / 250.0))
    dusty = _logistic(1.5 * m("dust") + speed - 3.0)
    coarse = (14.0 + 30.0 * spring * dusty) * (0.7 + 0.12 * speed)

    fields = {
        "t_clim": t_clim, "t_anom": t_anom, "pressure": pressure, "depression": depression,
        "precip": precip, "rain_threshold": rain_threshold, "u": u, "v": v, "speed": speed,
        "gustiness": 1.0 + 0.35 * _cycle(hour, 14.0), "o3": o3, "coarse": coarse,
    }  # fmt: skip
    fields.update({name: concentration[:, k] for k, name in enumerate(_SPECIES)})
    return fields


def _relax(target: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``c[0] = target[0]``; ``c[t+1] = target[t] + (c[t] − target[t])·keep[t]``, column by column."""
    out = np.empty_like(target)
    goals, keeps = target.tolist(), keep.tolist()
    state = list(goals[0])
    for i, (goal, k) in enumerate(zip(goals, keeps)):
        out[i] = state
        state = [g + (s - g) * f for s, g, f in zip(state, goal, k)]
    return out


def _start_hour(scenario: DriftScenario) -> int:
    return (scenario.start.toordinal() - _EPOCH_ORDINAL) * 24


def _smoke_shape(elapsed_hours: np.ndarray) -> np.ndarray:
    """Plume profile: 0 before its start, 1 at its peak (about 8 h later), then decaying."""
    t = np.maximum(elapsed_hours, 0.0)
    return (1.0 - np.exp(-t / _SMOKE_RISE_H)) * np.exp(-t / _SMOKE_DECAY_H) / _SMOKE_NORM


def _cycle(hour: np.ndarray, peak: float) -> np.ndarray:
    return np.cos(_TWO_PI * (hour - peak) / 24.0)


def _von_mises(hour: np.ndarray, centre: float, kappa: float) -> np.ndarray:
    """A smooth 24-hour-periodic bump of height 1 at ``centre``."""
    return np.exp(kappa * (_cycle(hour, centre) - 1.0))


def _logistic(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


# -------------------------------------------------------------------------------- parsing


def parse_scenarios(text: str) -> list[DriftScenario]:
    """Parse ``name@YYYY-MM-DD[@station][@magnitude]`` items joined by ``+``."""
    scenarios = []
    for item in text.split("+"):
        parts = [part.strip() for part in item.strip().split("@")]
        if not 2 <= len(parts) <= 4 or not parts[0]:
            raise SourceError(
                f"simulated source: scenario {item.strip()!r} is not name@YYYY-MM-DD[@station][@magnitude] "
                "(several joined by '+')"
            )
        name = parts[0]
        if name not in SCENARIOS:
            raise SourceError(f"simulated source: scenario {name!r} is unknown; expected one of {', '.join(SCENARIOS)}")
        start = _parse_date(f"scenario {name} start", parts[1])
        extras = parts[2:]
        station, magnitude = None, None
        if len(extras) == 2:
            station, magnitude = extras[0], _parse_magnitude(name, extras[1])
        elif len(extras) == 1:
            if name == "sensor_recalibration" and not _is_number(extras[0]):
                station = extras[0]
            else:
                magnitude = _parse_magnitude(name, extras[0])
        scenarios.append(DriftScenario(name, start, station, magnitude))
    return scenarios


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parse_magnitude(name: str, text: str) -> float:
    if not _is_number(text):
        raise SourceError(
            f"simulated source: scenario {name} magnitude {text!r} is not a number; "
            f"expected {MAGNITUDE_MEANINGS[name]}"
        )
    return float(text)


def _magnitude_ok(name: str, value) -> bool:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return False
    if not math.isfinite(value):
        return False
    if name == "emissions_trend":
        return value > -100.0
    if name == "smoke_episode":
        return value >= 0.0
    return value > 0.0


def _format_number(value: float) -> str:
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text


def _parse_columns(text: str) -> tuple[str, ...]:
    if text.strip() == "all":
        return MEASUREMENTS
    names = tuple(part.strip() for part in text.split("+") if part.strip())
    unknown = [n for n in names if n not in MEASUREMENTS]
    if unknown or not names:
        raise SourceError(
            f"simulated source: columns {text!r}: unknown measurement(s) {unknown}; choose from "
            f"{', '.join(MEASUREMENTS)} joined by '+', or 'all'"
        )
    return names


def _parse_int(key: str, text: str, low: int, high: int | None) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < low or (high is not None and value > high):
        expected = f"an integer in {low}..{high}" if high is not None else f"an integer >= {low}"
        raise SourceError(f"simulated source: {key}={text!r} is invalid; expected {expected}")
    return value


def _parse_date(key: str, text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise SourceError(f"simulated source: {key}={text!r} is invalid; expected a date YYYY-MM-DD") from None


def _plain_date(value, what: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    raise SourceError(f"simulated source: {what} must be a date, got {value!r}")


def _rng(seed: int, stream: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, stream, *keys]))
