"""Daily ``observations`` (with blocking data-quality checks) and daily ``feature_stats``."""


from datetime import date

import dagster as dg
import pandas as pd

from aqi_assets.core.configuration.store import current_config
from aqi_assets.core.data.feature_stats import compute_feature_stats, pool_stats
from aqi_assets.core.data.network import Network
from aqi_assets.core.plots import day_profile_png
from aqi_assets.core.data.schema import MEASUREMENTS, STATION, TIMESTAMP, UNITS, coerce_numeric
from aqi_assets.core.data.sources import SourceError
from aqi_assets.core.data.station_graph import build_station_graph
from aqi_assets.core.data.validation import CHECK_DESCRIPTIONS, fit_for_training, validate_day
from aqi_assets.defs.metadata import check_result, image, markdown_table
from aqi_assets.defs.partitions import SOURCE_ERROR, daily_partitions
from aqi_assets.defs.resources import LakeResource, ObservationSourceResource

QUALITY_DATASET = "observation_quality"


def column_schema(network: Network) -> dg.TableSchema:
    """The stored day's columns: timestamp, station, the network's measurements, its extra columns."""
    def kind(column: str) -> str:
        return "datetime" if column == TIMESTAMP else "float" if column in MEASUREMENTS else "string"

    return dg.TableSchema(columns=[
        dg.TableColumn(c, kind(c), description=UNITS.get(c, "as received" if c in network.extra else ""))
        for c in network.columns
    ])


@dg.asset(
    partitions_def=daily_partitions,
    group_name="ingestion",
    kinds={"pandas", "parquet"},
    check_specs=[
        dg.AssetCheckSpec(name, asset="observations", blocking=blocking, description=description)
        for name, (blocking, description) in CHECK_DESCRIPTIONS.items()
    ],
    description=(
        "Every station's hourly rows for one day, exactly as the source delivered them: timestamp, station, "
        "the measurements the network has (canonical units) and any extra columns."
        + (f"\n\n**The source could not be read when the code location loaded:** {SOURCE_ERROR}" if SOURCE_ERROR
           else "")
    ),
)
def observations(
    context: dg.AssetExecutionContext, source: ObservationSourceResource, lake: LakeResource
):
    day = date.fromisoformat(context.partition_key)
    spec = source.spec or "$AQI_SOURCE"
    try:
        src = source.get()
        network = src.network()
        frame = src.read_day(day)
    except SourceError as exc:
        raise dg.Failure(
            description=f"observations {day}: {exc}",
            metadata={"source": spec, "day": day.isoformat()},
            allow_retries=False,
        ) from exc
    store = lake.get()
    config = current_config(store)
    outcomes = validate_day(frame, day, src.station_ids(), config.quality, config.training.target, network)
    fit = fit_for_training(outcomes)
    store.write_json(QUALITY_DATASET, day.isoformat(), {
        "day": day.isoformat(), "fit_for_training": fit, "checks": [o.to_dict() for o in outcomes],
        "network": network.to_dict(),
    })
    failed = [o.summary for o in outcomes if not o.passed]
    for line in failed:
        context.log.warning(line)
    numeric = coerce_numeric(frame)
    present = [c for c in network.measured if c in numeric.columns]
    missing_share = float(numeric[present].isna().to_numpy().mean()) if len(numeric) and present else 1.0
    metadata = {
        "dagster/row_count": len(frame),
        "dagster/column_schema": column_schema(network),
        "stations": int(frame[STATION].nunique()) if STATION in frame.columns else 0,
        "missing_share": dg.MetadataValue.float(round(missing_share, 4)),
        "fit_for_training": fit,
        "source": src.spec,
        "measured": ", ".join(network.measured),
        "not_measured": ", ".join(network.not_measured) or "none",
        "extra_columns": ", ".join(network.extra) or "none",
        "unit_conversions": "; ".join(network.conversions) or "none",
        "preview": markdown_table(frame, max_rows=8),
    }
    target = config.training.target
    if len(frame) and target in numeric.columns and numeric[target].notna().any():
        metadata[f"{target}_mean"] = dg.MetadataValue.float(round(float(numeric[target].mean()), 2))
        metadata["plot"] = image(day_profile_png(numeric, target, f"{target} on {day} ({UNITS[target]})"),
                                 f"{target} by hour")
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
