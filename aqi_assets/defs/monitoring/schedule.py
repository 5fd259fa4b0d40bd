"""``retraining_schedule`` (per-model intervals adapted daily at 03:00) and its schedule."""

from datetime import date

import dagster as dg
import pandas as pd

from aqi_assets.core.configuration.store import current_config
from aqi_assets.core.data.datasets import latest_observed_day
from aqi_assets.core.monitoring.checks import adapt_schedule
from aqi_assets.defs.metadata import markdown_table
from aqi_assets.defs.monitoring.cadence import configured_cron_schedule
from aqi_assets.defs.resources import LakeResource


@dg.asset(
    group_name="monitoring",
    kinds={"json"},
    description=(
        "Per model: retraining interval in days (xgboost 7, lstm 14, gnn 21 to start), adapted daily from "
        "the performance score (< 0.7 → ×0.7, min 3; > 0.9 → ×1.3, max 30), last training and next due day."
    ),
    deps=["model_performance"],
)
def retraining_schedule(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult[dict]:
    store = lake.get()
    today = latest_observed_day(store) or date.today()
    state = adapt_schedule(store, current_config(store), today)
    table = pd.DataFrame([{"model": m, **v} for m, v in state["models"].items()])
    for model, entry in state["models"].items():
        if entry["interval_days"] != entry["previous_interval_days"]:
            context.log.info(f"{model}: interval {entry['previous_interval_days']} → {entry['interval_days']} days "
                             f"(performance score {entry['score']:.2f})")
    return dg.MaterializeResult(value=state, metadata={"as_of": state["as_of"], "schedule": markdown_table(table)})


adapt_schedule_job = dg.define_asset_job(
    name="adapt_retraining_schedule_job",
    selection=dg.AssetSelection.assets("retraining_schedule"),
    description="Recompute each model's retraining interval from its performance score.",
)

adapt_retraining_schedule = configured_cron_schedule(
    "adapt_retraining_schedule", adapt_schedule_job, "schedule.adapt_cron", lambda c: c.schedule.adapt_cron,
    "Adapt the retraining intervals when schedule.adapt_cron fires (daily 03:00 UTC by default; "
    "read from the configuration in force on every tick).",
)
