"""``retraining_config``: validates and records every change of thresholds and schedules."""

import dagster as dg
import pandas as pd
from pydantic import Field

from aqi_assets.core.configuration.config import ConfigError
from aqi_assets.core.configuration.store import next_record, save_record
from aqi_assets.core.data.sources import SourceError
from aqi_assets.defs.metadata import markdown_table
from aqi_assets.defs.resources import LakeResource, ObservationSourceResource
from aqi_assets.defs.training.pool import apply_pool_limit

#: The observation key that carries the reason of a rejected change.
REJECTED = "rejected"


class RetrainingConfigChange(dg.Config):
    """Dotted settings to change, e.g. ``{"gates.max_rmse": "22", "schedule.days.xgboost": "5"}``.

    Every key and default is listed by ``aqi-retrain config show`` and in the README.
    """

    set: dict[str, str] = Field(default_factory=dict, description="setting -> new value (dotted keys)")
    reset: bool = Field(default=False, description="start from the built-in defaults instead of the config in force")


@dg.asset(
    group_name="configuration",
    kinds={"json"},
    output_required=False,
    description=(
        "Thresholds and schedules in force: one version per materialization. An invalid change is an expected "
        "outcome, not a failure: nothing is recorded, the run says why (an observation naming the field) and "
        "the previous version stays in force."
    ),
)
def retraining_config(context: dg.AssetExecutionContext, config: RetrainingConfigChange, lake: LakeResource,
                      source: ObservationSourceResource):
    store = lake.get()
    network = None
    try:
        network = source.get().network()
    except SourceError as exc:
        context.log.warning(f"the source cannot be read, so training.target is not checked against it: {exc}")
    try:
        record = next_record(store, config.set, reset=config.reset, network=network)
    except ConfigError as exc:
        context.log.error(f"rejected configuration change: {exc}. The previous configuration stays in force.")
        yield dg.AssetObservation(asset_key=context.asset_key, metadata={
            REJECTED: str(exc), "field": exc.field, "requested": dg.MetadataValue.json(config.set)})
        return
    save_record(store, record)
    if apply_pool_limit(context.instance, record["config"]["operations"]["max_concurrent_retrainings"]):
        context.log.info(f"retraining pool limit set to {record['config']['operations']['max_concurrent_retrainings']}")
    changes = pd.DataFrame(
        [{"setting": k, "from": str(v["from"]), "to": str(v["to"])} for k, v in record["changes"].items()]
    )
    context.log.info(f"retraining_config v{record['version']}: {len(changes)} setting(s) changed")
    for note in record["notes"]:
        context.log.warning(note)
    yield dg.MaterializeResult(
        value=record,
        metadata={
            "version": record["version"],
            "changed_settings": len(changes),
            "changes": markdown_table(changes) if len(changes) else dg.MetadataValue.md("no change (same values)"),
            "config": dg.MetadataValue.json(record["config"]),
            **({"notes": dg.MetadataValue.md("\n".join(f"- {n}" for n in record["notes"]))} if record["notes"] else {}),
        },
    )


#: What `aqi-retrain config set` launches: one step in the run worker's own process (no step
#: subprocess to start), so an accepted change is recorded within seconds of leaving the queue.
retraining_config_job = dg.define_asset_job(
    name="retraining_config_job",
    selection=dg.AssetSelection.assets(retraining_config),
    executor_def=dg.in_process_executor,
    description="Record a configuration change (validated; a rejected change records nothing).",
)
