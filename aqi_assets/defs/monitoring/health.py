"""``platform_health_sensor``: the platform checking itself every minute, alerting on new problems.

Its tick's skip reason is the health summary (``core.health``), which ``aqi-retrain status``
shows by evaluating the sensor; a problem not seen on the previous tick sends a ``system_error``
alert once. Each tick also keeps the ``retraining`` pool's limit equal to
``operations.max_concurrent_retrainings``.
"""

import dagster as dg

from aqi_assets.core.alerts import Alert
from aqi_assets.core.health import HEALTH_SENSOR, platform_health
from aqi_assets.defs.monitoring.alerting import alert, dump_cursor, load_cursor
from aqi_assets.core.config_store import current_config
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
    health = platform_health(store, source.spec or None)
    apply_pool_limit(context.instance, current_config(store).operations.max_concurrent_retrainings)
    seen = set(load_cursor(context.cursor).get("problems", []))
    for finding in health.problems:
        if finding.message not in seen:
            alert(lake.get(), Alert("system_error", "high", f"platform problem: {finding.key}", finding.message,
                                    {"check": finding.key}), context.log)
    context.update_cursor(dump_cursor({"problems": sorted(f.message for f in health.problems)}))
    return dg.SkipReason(health.summary())
