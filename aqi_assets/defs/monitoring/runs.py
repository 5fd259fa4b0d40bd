"""Retraining runs as sensors see them: which models are in flight, and the request for a trigger."""

import dagster as dg

from aqi_assets.core.configuration.config import MODEL_NAMES, RetrainingConfig
from aqi_assets.core.monitoring.triggers import Trigger
from aqi_assets.defs.run_tags import MODEL_TAG, RETRAINING_TAG, TRIGGER_KEY_TAG

IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
             dg.DagsterRunStatus.STARTED]


def retraining_job_name(model: str) -> str:
    return f"retrain_{model}"


def retrainings_in_flight(instance: dg.DagsterInstance) -> set[str]:
    """Models with a retraining queued or running (sensor-launched or manual)."""
    busy: set[str] = set()
    for run in instance.get_runs(filters=dg.RunsFilter(tags={RETRAINING_TAG: "true"}, statuses=IN_FLIGHT)):
        model = run.tags.get(MODEL_TAG) or (run.run_config or {}).get("model")
        busy.update(MODEL_NAMES if model in (None, "", "*") else [model])
    return busy


def retraining_request(trigger: Trigger, model: str, config: RetrainingConfig) -> dg.RunRequest:
    """The run that answers ``trigger`` for ``model``; its run key is the trigger's dedup key."""
    tags = {**trigger.tags(), MODEL_TAG: model, TRIGGER_KEY_TAG: trigger.key,
            "dagster/max_runtime": str(config.operations.retraining_timeout_seconds)}
    run_key = trigger.key if trigger.model == model else f"{trigger.key}/{model}"
    return dg.RunRequest(run_key=run_key, job_name=retraining_job_name(model), tags=tags)


def requests_for(triggers: list[Trigger], busy: set[str], config: RetrainingConfig
                 ) -> tuple[list[dg.RunRequest], list[str]]:
    """Run requests for every (trigger, model) not already being retrained, and what was held back."""
    requests, held = [], []
    for trigger in triggers:
        for model in (MODEL_NAMES if trigger.model == "*" else [trigger.model]):
            if model in busy:
                held.append(f"{model}: a retraining is already queued or running ({trigger.trigger_type} trigger held)")
                continue
            busy = busy | {model}
            requests.append(retraining_request(trigger, model, config))
    return requests, held
