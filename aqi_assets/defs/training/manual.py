"""Manual retraining requests, however they were launched (UI Launchpad, GraphQL, ``aqi-retrain trigger``).

A ``manual_retraining`` run names its model, reason and severity in its config only. Its first
step (``training_dataset``) writes them onto the run as ``aqi/*`` tags (so ``history``,
``status`` and the UI show them like a sensor's), then deduplicates: when an identical request
(same model, reason and severity) was created earlier and was still waiting when this one
arrived, that run answers both; this run ends after that one step, tagged
``aqi/outcome=deduplicated`` with the run it joined.
Requests that differ are separate retrainings, one after another as the ``retraining`` pool
allows. A request whose twin failed is not deduplicated: nothing is lost.
"""

import dagster as dg

from aqi_assets.defs.run_tags import (
    DEDUPLICATED_INTO_TAG,
    MODEL_TAG,
    OUTCOME_TAG,
    REASON_TAG,
    SEVERITY_TAG,
    TRIGGER_TYPE_TAG,
)

MANUAL_JOB = "manual_retraining"
_ALIVE = (dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
          dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.SUCCESS)


def request_of(run_config: dict) -> tuple[str, str, str]:
    """(model, reason, severity) of a ``manual_retraining`` run config."""
    return (str(run_config.get("model", "")), str(run_config.get("reason", "")).strip(),
            str(run_config.get("severity", "medium")))


def twin_waiting_before(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str | None:
    """The id of an identical request created before ``run`` that had not started when ``run`` was created."""
    mine = instance.get_run_record_by_id(run.run_id)
    wanted = request_of(run.run_config or {})
    earlier = instance.get_run_records(filters=dg.RunsFilter(job_name=MANUAL_JOB, created_before=mine.create_timestamp,
                                                             statuses=list(_ALIVE)))
    for record in sorted(earlier, key=lambda r: r.create_timestamp):
        other = record.dagster_run
        if other.run_id == run.run_id or request_of(other.run_config or {}) != wanted:
            continue
        if other.tags.get(OUTCOME_TAG) == "deduplicated":
            continue
        started = record.start_time
        if started is None or started >= mine.create_timestamp.timestamp():
            return other.run_id
    return None


def answered_elsewhere(context: dg.AssetExecutionContext) -> bool:
    """For a ``manual_retraining`` run: tag it with its request; ``True`` when an identical waiting
    request already answers it (then the run stops here). Any other run: ``False``."""
    if context.run.job_name != MANUAL_JOB:
        return False
    model, reason, severity = request_of(context.run.run_config or {})
    tags = {MODEL_TAG: model, REASON_TAG: reason[:200], SEVERITY_TAG: severity, TRIGGER_TYPE_TAG: "manual"}
    context.instance.add_run_tags(context.run_id, {k: v for k, v in tags.items() if context.run.tags.get(k) != v})
    twin = twin_waiting_before(context.instance, context.run)
    if twin is None:
        return False
    context.instance.add_run_tags(context.run_id, {OUTCOME_TAG: "deduplicated", DEDUPLICATED_INTO_TAG: twin})
    context.log.info(f"deduplicated: an identical request ({model}, {severity}: {reason}) was already waiting as "
                     f"run {twin}; that run retrains {model} on the same data, this one ends here")
    return True
