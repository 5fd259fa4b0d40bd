"""Sensors that request retraining (degradation, drift, schedule), ingest new days, and alert."""

from datetime import timedelta

import dagster as dg

from aqi_assets.core.monitoring import checks as monitoring
from aqi_assets.core.monitoring.alerts import Alert
from aqi_assets.core.configuration.store import current_config
from aqi_assets.core.data.datasets import OBSERVATIONS, latest_observed_day
from aqi_assets.defs.monitoring.alerting import alert, alerting_on_error
from aqi_assets.defs.monitoring.cursors import dump_cursor, load_cursor
from aqi_assets.defs.monitoring.interval import TICK_SECONDS, checked_on_configured_interval
from aqi_assets.defs.monitoring.performance import ingest_day
from aqi_assets.defs.monitoring.runs import requests_for, retrainings_in_flight
from aqi_assets.defs.resources import LakeResource, ObservationSourceResource
from aqi_assets.defs.run_tags import TRIGGER_KEY_TAG
from aqi_assets.defs.training.jobs import RETRAINING_JOBS, manual_retraining

MAX_INGEST_PER_TICK = 7


def _skip(held: list[str], found: int) -> dg.SkipReason:
    return dg.SkipReason(f"{found} trigger(s) found; held back: " + "; ".join(held)) if held \
        else dg.SkipReason("no trigger fired")


@dg.sensor(
    name="performance_degradation_sensor",
    minimum_interval_seconds=TICK_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    jobs=list(RETRAINING_JOBS.values()),
    description="Retrains a model whose live error degrades (performance.* settings; raw RMSE and within-20 % by default).",
)
@alerting_on_error
@checked_on_configured_interval(triggers_retraining=True)
def performance_degradation_sensor(context: dg.SensorEvaluationContext, lake: LakeResource):
    store = lake.get()
    config = current_config(store)
    state = load_cursor(context.cursor)
    last = state.get("last_trigger", {})
    check = monitoring.check_performance(store, config, last)
    if check.today is None:
        return dg.SkipReason("no model_performance scores stored yet")
    requests, held = requests_for(check.triggers, retrainings_in_flight(context.instance), config)
    requested = {request.tags[TRIGGER_KEY_TAG] for request in requests}
    for trigger in check.triggers:
        if trigger.key not in requested:  # held back: not fired, no cooldown; re-evaluated next tick
            continue
        last[trigger.model] = check.today.isoformat()
        if trigger.severity == "critical":
            alert(store, Alert("critical_degradation", "critical", f"{trigger.model} live error degraded",
                               trigger.reason, {"model": trigger.model, **_numbers(trigger.evidence)}), context.log)
    context.update_cursor(dump_cursor({**state, "last_trigger": last}))
    return requests or _skip(held, len(check.triggers))


@dg.sensor(
    name="data_drift_sensor",
    minimum_interval_seconds=TICK_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    jobs=list(RETRAINING_JOBS.values()),
    description="Retrains every model when inputs drift (drift.* settings: CUSUM of each station against its peers by default; the window rules with drift.rule=seed); alerts on changes retraining would not fix.",
)
@alerting_on_error
@checked_on_configured_interval(triggers_retraining=True)
def data_drift_sensor(context: dg.SensorEvaluationContext, lake: LakeResource):
    store = lake.get()
    config = current_config(store)
    from aqi_assets.core.monitoring.drift import DriftState  # scipy: when drift is checked, not when the code loads

    state = load_cursor(context.cursor)
    drift_state = DriftState.from_json(state)
    report, triggers = monitoring.check_drift(store, config, drift_state)
    if report is None:
        return dg.SkipReason("not enough feature_stats days for a current and a reference window")
    requests, held = requests_for(triggers, retrainings_in_flight(context.instance), config)
    if requests:  # fired only when a run was requested: then cooldown, and its pairs' references restart
        state.update(drift_state.fired(report).to_json())
        alert(store, Alert("drift_detected", triggers[0].severity, "input drift detected", report.summary(),
                           {"pairs flagged": len(report.flagged), "reference": report.reference_kind}), context.log)
    elif not triggers:
        # a broken sensor (flat-lining or silent): retraining would not fix it; alert when it
        # starts (and every drift.cooldown_days while it lasts), no run; other findings below the
        # retrain threshold are in the tick's skip reason and the report
        due, after = drift_state.sensor_fault_alerts(report)
        if due:
            state.update(after.to_json())
            alert(store, Alert("sensor_error", "medium", "suspect sensor readings", report.summary(),
                               {"sensors": ", ".join(f"{st}/{ft} ({what})" for st, ft, what in due),
                                "pairs flagged": len(report.alert_rows)}), context.log)
    context.update_cursor(dump_cursor(state))
    return requests or dg.SkipReason(report.summary() if not held else "; ".join(held))


@dg.sensor(
    name="scheduled_retraining_sensor",
    minimum_interval_seconds=TICK_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    jobs=list(RETRAINING_JOBS.values()),
    description="Retrains a model when its adaptive interval (retraining_schedule) has passed since its last training.",
)
@alerting_on_error
@checked_on_configured_interval(triggers_retraining=True)
def scheduled_retraining_sensor(context: dg.SensorEvaluationContext, lake: LakeResource):
    store = lake.get()
    today = latest_observed_day(store)
    if today is None or not monitoring.schedule_state(store):
        return dg.SkipReason("no observations or no retraining_schedule materialized yet")
    triggers = monitoring.due_triggers(store, today)
    requests, held = requests_for(triggers, retrainings_in_flight(context.instance), current_config(store))
    return requests or _skip(held, len(triggers))


@dg.sensor(
    name="observations_arrival_sensor",
    minimum_interval_seconds=TICK_SECONDS,
    default_status=dg.DefaultSensorStatus.STOPPED,
    job=ingest_day,
    description=(
        "Ingests each new day the source has (observations, feature_stats, model_performance), oldest "
        f"first, up to {MAX_INGEST_PER_TICK} per tick. Turn on to follow a live source."
    ),
)
@alerting_on_error
@checked_on_configured_interval(triggers_retraining=False)
def observations_arrival_sensor(context: dg.SensorEvaluationContext, source: ObservationSourceResource,
                                lake: LakeResource):
    src = source.get()
    available = src.last_day()
    if available is None:
        return dg.SkipReason(f"{src.spec} has no complete day yet")
    store = lake.get()
    latest = latest_observed_day(store)
    if latest is None:  # a fresh platform starts with one training window of history
        window = current_config(store).training.window_days
        first = max(src.first_day(), available - timedelta(days=window - 1))
    else:
        first = latest + timedelta(days=1)
    stored = set(store.days(OBSERVATIONS))
    days = [first + timedelta(days=i) for i in range((available - first).days + 1)]
    days = [d for d in days if d not in stored][:MAX_INGEST_PER_TICK]
    if not days:
        return dg.SkipReason(f"up to date through {available}")
    return [dg.RunRequest(run_key=f"ingest/{d.isoformat()}", partition_key=d.isoformat()) for d in days]


@dg.run_failure_sensor(
    name="retraining_failure_alert",
    monitored_jobs=[*RETRAINING_JOBS.values(), manual_retraining],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Alerts when a retraining run fails (the champion is unchanged by construction).",
)
def retraining_failure_alert(context: dg.RunFailureSensorContext, lake: LakeResource):
    run = context.dagster_run
    message = context.failure_event.message or "run failed"
    alert(lake.get(), Alert("retraining_failed", "high", f"retraining run {run.run_id[:8]} failed",
                            message, {"job": run.job_name, "model": run.tags.get("aqi/model", "?"),
                                      "trigger": run.tags.get("aqi/trigger_type", "?")}), context.log)


def _numbers(evidence: dict) -> dict:
    return {k: f"{v:.3g}" if isinstance(v, float) else v for k, v in evidence.items()
            if isinstance(v, (int, float, str))}
