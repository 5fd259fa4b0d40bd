"""``training_dataset``: the latest training window of observations that passed their gates (and, as the
first step of a manual retraining, where a request is tagged and deduplicated)."""

import dagster as dg
import pandas as pd

from aqi_assets.core.configuration.store import current_config
from aqi_assets.core.data.datasets import training_window
from aqi_assets.defs.metadata import markdown_table
from aqi_assets.defs.resources import LakeResource
from aqi_assets.defs.training.manual import answered_elsewhere


@dg.asset(
    group_name="training",
    kinds={"pandas", "parquet"},
    deps=["observations"],
    output_required=False,
    description=(
        "The latest `training.window_days` days of stored observations up to the newest day; "
        "days whose blocking quality checks failed are left out and listed."
    ),
)
def training_dataset(context: dg.AssetExecutionContext, lake: LakeResource):
    if answered_elsewhere(context):
        return  # a manual request already waiting answers this one: nothing downstream runs
    store = lake.get()
    settings = current_config(store).training
    frame, report = training_window(store, settings.window_days)
    min_days = settings.validation_days + settings.holdout_days + 1
    if len(report.days_used) < min_days:
        raise dg.Failure(
            description=(
                f"not enough observations to train: {report.summary()}; need at least {min_days} usable "
                "days (training.validation_days + training.holdout_days + 1). Materialize more "
                "`observations` partitions first."
            ),
            allow_retries=False,
        )
    context.log.info(f"training window: {report.summary()}")
    excluded = pd.DataFrame(
        [{"day": d.isoformat(), "failed checks": ", ".join(c)} for d, c in sorted(report.days_excluded.items())]
    )
    yield dg.MaterializeResult(
        value=frame,
        metadata={
            "dagster/row_count": len(frame),
            "window_start": str(report.start),
            "window_end": str(report.end),
            "days_used": len(report.days_used),
            "days_excluded": len(report.days_excluded),
            "days_not_materialized": len(report.days_missing),
            "stations": int(frame["station"].nunique()),
            "excluded_days": markdown_table(excluded) if len(excluded) else dg.MetadataValue.md("none"),
        },
    )
