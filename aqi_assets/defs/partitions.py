"""The daily partitions of every per-day asset, starting on the source's first day.

The code location always loads: when ``AQI_SOURCE`` cannot be read (a missing directory, an
unreadable file, an unknown kind), the partitions start yesterday and ``SOURCE_ERROR`` holds
the reason, which every run that reads the source and ``aqi-retrain status`` report.
"""


from datetime import date, timedelta

import dagster as dg

from aqi_assets.core.data.sources import ObservationSource, SourceError, source_from_spec


def daily_partitions_for(source: ObservationSource) -> dg.DailyPartitionsDefinition:
    """Days from the source's first day; bounded by its last day unless the source is live."""
    end = None if source.is_live else source.last_day()
    return dg.DailyPartitionsDefinition(
        start_date=source.first_day().isoformat(),
        end_date=(end + timedelta(days=1)).isoformat() if end else None,
    )


def _load() -> tuple[dg.DailyPartitionsDefinition, str | None]:
    try:
        return daily_partitions_for(source_from_spec()), None
    except (SourceError, OSError, ValueError) as exc:
        fallback = dg.DailyPartitionsDefinition(start_date=(date.today() - timedelta(days=1)).isoformat())
        return fallback, f"{type(exc).__name__}: {exc}"


daily_partitions, SOURCE_ERROR = _load()
