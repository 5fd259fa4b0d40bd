"""Sending alerts from Dagster code: the webhook from config, and sensors that alert on their own errors."""

import functools

import dagster as dg

from aqi_assets.core.monitoring.alerts import Alert, send_alert
from aqi_assets.core.configuration.store import current_config
from aqi_assets.core.data.lake import Lake


def alert(lake: Lake, alert_: Alert, log=None) -> bool:
    """Log and (if configured) post ``alert_`` to the webhook of the configuration in force."""
    url = current_config(lake).operations.alert_webhook_url
    return send_alert(alert_, url, log=log)


def alerting_on_error(fn):
    """Wrap a sensor body: an exception is alerted (sensor_error) and then re-raised."""

    @functools.wraps(fn)
    def wrapper(context, *args, **kwargs):
        try:
            return fn(context, *args, **kwargs)
        except Exception as exc:
            lake = kwargs.get("lake")
            store = lake.get() if lake is not None else None
            name = fn.__name__  # the sensor's name (a test context may not carry one)
            payload = Alert("sensor_error", "high", f"sensor {name} failed", f"{type(exc).__name__}: {exc}",
                            {"sensor": name})
            if store is not None:
                alert(store, payload, context.log)
            else:
                send_alert(payload, log=context.log)
            raise

    return wrapper
