"""``platform_health_sensor``: the platform checking itself every minute, alerting on new problems.

Its tick's skip reason is the health summary (``core.monitoring.health``), which ``aqi-retrain status``
shows by evaluating the sensor; a problem not seen on the previous tick sends a ``system_error``
alert once, and the latest check is kept in the lake (``platform_health``, with the daemon's
uptime) for the weekly report. Each tick also keeps the ``retraining`` pool's limit equal to
``operations.max_concurrent_retrainings``.
"""

import time

import dagster as dg

from aqi_assets.core.monitoring.alerts import Alert
from aqi_assets.core.monitoring.health import HEALTH_DATASET, HEALTH_SENSOR, platform_health
from aqi_assets.defs.monitoring.alerting import alert
from aqi_assets.defs.monitoring.cursors import dump_cursor, load_cursor
from aqi_assets.core.configuration.store import current_config
from aqi_assets.defs.resources import LakeResource, ObservationSourceResource
from aqi_assets.defs.training.pool import apply_pool_limit

@dg.sensor(
    name=HEALTH_SENSOR,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Checks that the platform can work (the source can be read, ...); its ticks say what it found, "
                "and a new problem is alerted (system_error). Launches nothing.",
)
def platform_health_sensor(context: dg.SensorEvaluationContext, source: ObservationSourceResource,
                           lake: LakeResource):
    store = lake.get()
    state = load_cursor(context.cursor)
    now = time.time()
    beats = context.instance.get_daemon_heartbeats()
    heartbeats = {str(kind): beat.timestamp for kind, beat in beats.items()}
    daemon_id = next((beat.daemon_id for beat in beats.values()), None)
    if daemon_id != state.get("daemon_id"):  # a daemon (re)started: uptime counts from now
        state.update(daemon_id=daemon_id, up_since=now)
    health = platform_health(store, source.spec or None, heartbeats, now, state["up_since"] if daemon_id else None)
    apply_pool_limit(context.instance, current_config(store).operations.max_concurrent_retrainings)
    seen = set(state.get("problems", []))
    for finding in health.problems:
        if finding.message not in seen:
            alert(lake.get(), Alert("system_error", "high", f"platform problem: {finding.key}", finding.message,
                                    {"check": finding.key}), context.log)
    state["problems"] = sorted(f.message for f in health.problems)
    context.update_cursor(dump_cursor(state))
    store.write_json(HEALTH_DATASET, None, {"checked_at": now, "summary": health.summary(), "ok": health.ok,
                                            "daemon_up_since": state["up_since"] if daemon_id else None})
    return dg.SkipReason(health.summary())
