"""Daily ``observations`` (with blocking data-quality checks) and daily ``feature_stats``."""


from datetime import date

import dagster as dg
import pandas as pd

from aqi_assets.core.feature_stats import compute_feature_stats, pool_stats
from aqi_assets.core.plots import day_profile_png
from aqi_assets.core.schema import NUMERIC_COLUMNS, OBSERVATION_COLUMNS, STATION, UNITS, coerce_numeric
from aqi_assets.core.sources import SourceError
from aqi_assets.core.station_graph import build_station_graph
from aqi_assets.core.validation import CHECK_DESCRIPTIONS, fit_for_training, validate_day
from aqi_assets.defs.metadata import check_result, image, markdown_table
from aqi_assets.defs.partitions import daily_partitions
from aqi_assets.defs.resources import LakeResource, ObservationSourceResource

QUALITY_DATASET = "observation_quality"

OBSERVATION_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn(c, "datetime" if c == "timestamp" else "string" if c in (STATION, "wind_direction") else "float",
                       description=UNITS.get(c, ""))
        for c in OBSERVATION_COLUMNS
    ]
)


@dg.asset(
    partitions_def=daily_partitions,
    group_name="ingestion",
    kinds={"pandas", "parquet"},
    check_specs=[
        dg.AssetCheckSpec(name, asset="observations", blocking=blocking, description=description)
        for name, (blocking, description) in CHECK_DESCRIPTIONS.items()
    ],
    metadata={"dagster/column_schema": OBSERVATION_SCHEMA},
    description="Every station's hourly rows for one day, exactly as the source delivered them.",
)
def observations(
    context: dg.AssetExecutionContext, source: ObservationSourceResource, lake: LakeResource
):
    day = date.fromisoformat(context.partition_key)
    src = source.get()
    try:
        frame = src.read_day(day)
    except SourceError as exc:
        raise dg.Failure(
            description=f"observations {day}: {exc}",
            metadata={"source": src.spec, "day": day.isoformat()},
            allow_retries=False,
        ) from exc
    outcomes = validate_day(frame, day, src.station_ids())
    fit = fit_for_training(outcomes)
    lake.get().write_json(QUALITY_DATASET, day.isoformat(), {
        "day": day.isoformat(), "fit_for_training": fit, "checks": [o.to_dict() for o in outcomes],
    })
    failed = [o.summary for o in outcomes if not o.passed]
    for line in failed:
        context.log.warning(line)
    numeric = coerce_numeric(frame)
    present = [c for c in NUMERIC_COLUMNS if c in numeric.columns]
    missing_share = float(numeric[present].isna().to_numpy().mean()) if len(numeric) and present else 1.0
    metadata = {
        "dagster/row_count": len(frame),
        "stations": int(frame[STATION].nunique()) if STATION in frame.columns else 0,
        "missing_share": round(missing_share, 4),
        "fit_for_training": fit,
        "source": src.spec,
        "preview": markdown_table(frame, max_rows=8),
    }
    if len(frame) and "pm25" in numeric.columns and numeric["pm25"].notna().any():
        metadata["pm25_mean"] = round(float(numeric["pm25"].mean()), 2)
        metadata["plot"] = image(day_profile_png(numeric, "pm25", f"PM2.5 on {day} (µg/m³)"), "PM2.5 by hour")
    return dg.MaterializeResult(
        value=frame, metadata=metadata, check_results=[check_result(o) for o in outcomes]
    )


@dg.asset(
    partitions_def=daily_partitions,
    group_name="ingestion",
    kinds={"pandas", "parquet"},
    description=(
        "Per day, per station and feature: count, missing share, mean, std, quantiles and a "
        "histogram on fixed bin edges (schema.histogram_edges) — what drift detection compares."
    ),
)
def feature_stats(context: dg.AssetExecutionContext, observations: pd.DataFrame) -> dg.MaterializeResult[pd.DataFrame]:
    day = date.fromisoformat(context.partition_key)
    stats = compute_feature_stats(observations, day)
    network = pool_stats(stats, by=("feature",))[["feature", "count", "missing_share", "mean", "std"]]
    return dg.MaterializeResult(
        value=stats,
        metadata={
            "dagster/row_count": len(stats),
            "stations": int(stats[STATION].nunique()) if len(stats) else 0,
            "features": int(stats["feature"].nunique()) if len(stats) else 0,
            "network_summary": markdown_table(network, max_rows=20),
        },
    )


@dg.asset(
    group_name="ingestion",
    kinds={"json"},
    description="Stations, coordinates and distance-weighted neighbour edges (the GNN's graph).",
)
def station_graph(source: ObservationSourceResource) -> dg.MaterializeResult[dict]:
    stations = source.get().stations()
    graph = build_station_graph(stations)
    edges = graph.to_frame()
    located = int(stations[["latitude", "longitude"]].notna().all(axis=1).sum())
    return dg.MaterializeResult(
        value=graph.to_dict(),
        metadata={
            "stations": graph.n_stations,
            "edges": graph.n_edges,
            "stations_with_coordinates": located,
            "edges_preview": markdown_table(edges, max_rows=15),
        },
    )
