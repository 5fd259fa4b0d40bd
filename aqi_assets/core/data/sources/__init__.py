"""Observation sources and the one setting that chooses them (``AQI_SOURCE``).

| spec | source |
|---|---|
| ``simulated`` or ``simulated:key=value,...`` | the embedded multi-station generator (default) |
| ``prsa:<dir>`` | UCI Beijing Multi-Site files in ``<dir>`` |
| ``csv:<dir>`` | the documented long CSV format in ``<dir>`` |
"""

from __future__ import annotations

import os

from aqi_assets.core.data.sources.base import ObservationSource, SourceError

DEFAULT_SOURCE_SPEC = "simulated"
SOURCE_ENV_VAR = "AQI_SOURCE"


def source_from_spec(spec: str | None = None) -> ObservationSource:
    """Build the source a spec names; ``None`` reads ``AQI_SOURCE`` (default ``simulated``)."""
    spec = (spec or os.environ.get(SOURCE_ENV_VAR) or DEFAULT_SOURCE_SPEC).strip()
    kind, _, rest = spec.partition(":")
    if kind == "simulated":
        from aqi_assets.core.data.sources.simulated import SimulatedSource

        return SimulatedSource.from_spec(rest)
    if kind == "prsa":
        from aqi_assets.core.data.sources.prsa import prsa_source

        if not rest:
            raise SourceError("AQI_SOURCE=prsa:<dir> needs a directory, e.g. prsa:../shared/data/beijing")
        return prsa_source(rest)
    if kind == "csv":
        from aqi_assets.core.data.sources.csv_long import CsvLongSource
        from aqi_assets.core.data.sources.file_source import cached_source

        if not rest:
            raise SourceError("AQI_SOURCE=csv:<dir> needs a directory of long-format CSV files")
        return cached_source(CsvLongSource, rest)
    raise SourceError(
        f"unknown AQI_SOURCE {spec!r}: expected 'simulated[:k=v,...]', 'prsa:<dir>' or 'csv:<dir>'"
    )


__all__ = ["ObservationSource", "SourceError", "source_from_spec", "DEFAULT_SOURCE_SPEC", "SOURCE_ENV_VAR"]
