"""When a trigger sensor does its work: the configured check interval and the automation switch.

Sensors tick every ``TICK_SECONDS``; a tick checks only when ``operations.check_interval_minutes``
of the configuration in force has passed since the sensor's last check (kept in its cursor), so a
change of the setting applies at the next tick without a reload. While automated retraining is
off (``operations.automated_retraining = false`` or ``AQI_AUTOMATED_RETRAINING_ENABLED=false``)
the trigger sensors skip and say why; manual retraining is unaffected.
"""

import functools
import time
from datetime import datetime, timezone

import dagster as dg

from aqi_assets.core.configuration.store import current_config
from aqi_assets.core.configuration.settings import automation_off_reason
from aqi_assets.defs.monitoring.cursors import LAST_CHECK, dump_cursor, load_cursor

TICK_SECONDS = 30


def checked_on_configured_interval(triggers_retraining: bool):
    """Wrap a sensor body (with a ``lake`` resource argument) in the interval and automation rules."""

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(context, *args, **kwargs):
            config = current_config(kwargs["lake"].get())
            if triggers_retraining:
                off = automation_off_reason(config.operations.automated_retraining)
                if off:
                    return dg.SkipReason(f"{off}; manual retraining still works")
            state = load_cursor(context.cursor)
            minutes = config.operations.check_interval_minutes
            now, last = time.time(), state.get(LAST_CHECK)
            if last is not None and now - last < 60 * minutes - TICK_SECONDS / 2:
                due = datetime.fromtimestamp(last + 60 * minutes, timezone.utc)
                return dg.SkipReason(f"next check at {due:%H:%M:%S} UTC "
                                     f"(operations.check_interval_minutes = {minutes})")
            result = fn(context, *args, **kwargs)
            context.update_cursor(dump_cursor({**load_cursor(context.cursor), LAST_CHECK: now}))
            return result

        return wrapper

    return decorate
