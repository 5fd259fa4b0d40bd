"""The observation-source interface every source implements, and the error it raises."""

from __future__ import annotations

import abc
from datetime import date, timedelta

import pandas as pd

from aqi_assets.core.data.network import Network
from aqi_assets.core.data.schema import OBSERVATION_COLUMNS, STATION, TIMESTAMP


class SourceError(Exception):
    """A source cannot deliver a day: the message names the file (or setting) and the problem."""


class ObservationSource(abc.ABC):
    """Hourly station observations, one calendar day at a time, in the canonical schema.

    ``read_day`` returns the rows exactly as received (numeric columns that do not parse stay as
    text, so validation can name them); it never drops, fills or reorders values beyond sorting.
    """

    #: The spec string that recreates this source (``AQI_SOURCE``).
    spec: str
    #: A live source keeps adding days (its partitions run up to yesterday); a fixed one ends.
    is_live: bool = False

    @abc.abstractmethod
    def stations(self) -> pd.DataFrame:
        """One row per expected station: ``station``, ``latitude``, ``longitude`` (NaN if unknown)."""

    @abc.abstractmethod
    def network(self) -> Network:
        """What the network measures (its columns, extra columns and unit conversions)."""

    @abc.abstractmethod
    def first_day(self) -> date:
        """The first day the source has data for (the start of the daily partitions)."""

    @abc.abstractmethod
    def last_day(self) -> date | None:
        """The last complete day available now; ``None`` if the source has no data yet."""

    @abc.abstractmethod
    def read_day(self, day: date) -> pd.DataFrame:
        """Every station's hourly rows for ``day`` (may be empty, never silently cleaned)."""

    def read_range(self, start: date, end: date) -> pd.DataFrame:
        """Rows for the days ``start``..``end`` inclusive, concatenated in time order."""
        frames = [self.read_day(d) for d in days_between(start, end)]
        frames = [f for f in frames if len(f)]
        if not frames:
            return empty_observations(self.network().columns)
        return pd.concat(frames, ignore_index=True)

    def station_ids(self) -> list[str]:
        return self.stations()[STATION].astype(str).tolist()


def days_between(start: date, end: date) -> list[date]:
    """Every calendar day from ``start`` to ``end`` inclusive."""
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def empty_observations(columns: tuple[str, ...] = OBSERVATION_COLUMNS) -> pd.DataFrame:
    """A frame with no rows and ``columns`` (timestamp as datetime64, measurements as float64)."""
    frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in columns})
    frame[TIMESTAMP] = pd.Series(dtype="datetime64[ns]")
    frame[STATION] = pd.Series(dtype=object)
    return frame[list(columns)]


def day_slice(frame: pd.DataFrame, day: date) -> pd.DataFrame:
    """Rows of ``frame`` (sorted by timestamp) that fall on ``day``, as a fresh frame."""
    ts = frame[TIMESTAMP].to_numpy()
    lo = ts.searchsorted(pd.Timestamp(day).to_datetime64(), side="left")
    hi = ts.searchsorted(pd.Timestamp(day + timedelta(days=1)).to_datetime64(), side="left")
    return frame.iloc[lo:hi].reset_index(drop=True)
