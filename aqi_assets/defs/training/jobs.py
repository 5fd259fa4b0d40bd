"""The retraining jobs: one per model (what the sensors launch) and ``manual_retraining`` (a person's request)."""

import dagster as dg

from aqi_assets.core.configuration.config import MODEL_NAMES
from aqi_assets.defs.executor import retraining_executor
from aqi_assets.defs.run_tags import MODEL_TAG, RETRAINING_TAG, TRIGGER_TYPE_TAG
from aqi_assets.defs.training.manual import MANUAL_JOB
from aqi_assets.defs.training.models import MODELS_OP


def retraining_job(model: str) -> dg.JobDefinition:
    return dg.define_asset_job(
        name=f"retrain_{model}",
        selection=dg.AssetSelection.assets("training_dataset", f"{model}_model", f"{model}_promotion"),
        tags={RETRAINING_TAG: "true", MODEL_TAG: model},
        executor_def=retraining_executor(),
        description=f"Retrain {model}: fresh training window, candidate, gates, promotion.",
    )


@dg.config_mapping(config_schema={
    "model": dg.Field(dg.Enum("Model", [dg.EnumValue(m) for m in MODEL_NAMES]), description="which model"),
    "reason": dg.Field(str, description="why the model is retrained"),
    "severity": dg.Field(dg.Enum("Severity", [dg.EnumValue(s) for s in ("low", "medium", "high", "critical")]),
                         default_value="medium"),
})
def _manual_config(values: dict) -> dict:
    from aqi_assets.core.monitoring.triggers import manual_trigger

    manual_trigger(values["model"], values["reason"], values["severity"])  # validates, names the bad value
    return {"ops": {MODELS_OP: {"config": {"model": values["model"], "reason": values["reason"],
                                           "severity": values["severity"]}}}}


manual_retraining = dg.define_asset_job(
    name=MANUAL_JOB,
    selection=dg.AssetSelection.assets("training_dataset", *[f"{m}_model" for m in MODEL_NAMES],
                                       *[f"{m}_promotion" for m in MODEL_NAMES]),
    config=_manual_config,
    tags={RETRAINING_TAG: "true", TRIGGER_TYPE_TAG: "manual"},
    executor_def=retraining_executor(),
    description="Retrain one model now: config `model`, `reason`, `severity` (from the Launchpad, GraphQL or "
                "aqi-retrain trigger); only that model's steps run, and an identical request already waiting "
                "answers a repeated one.",
)

RETRAINING_JOBS = {m: retraining_job(m) for m in MODEL_NAMES}


# Loaded from the defs folder: train_models (models.py), PROMOTIONS and ROLLBACK_JOBS (promotion.py),
# manual_retraining and these (module level).
RETRAINING_JOB_LIST = list(RETRAINING_JOBS.values())
