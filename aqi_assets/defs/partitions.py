"""The daily partitions of every per-day asset, starting on the source's first day."""


from datetime import timedelta

import dagster as dg

from aqi_assets.core.sources import ObservationSource, source_from_spec


def daily_partitions_for(source: ObservationSource) -> dg.DailyPartitionsDefinition:
    """Days from the source's first day; bounded by its last day unless the source is live."""
    end = None if source.is_live else source.last_day()
    return dg.DailyPartitionsDefinition(
        start_date=source.first_day().isoformat(),
        end_date=(end + timedelta(days=1)).isoformat() if end else None,
    )


daily_partitions = daily_partitions_for(source_from_spec())
