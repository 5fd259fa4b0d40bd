"""Alerts: always logged, and posted as Slack-compatible JSON to a webhook when one is configured."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import requests

WEBHOOK_ENV_VAR = "AQI_ALERT_WEBHOOK_URL"
ALERT_KINDS = ("critical_degradation", "drift_detected", "retraining_failed", "sensor_error", "system_error")
_ICONS = {"critical": ":rotating_light:", "high": ":warning:", "medium": ":large_yellow_circle:", "low": ":information_source:"}
logger = logging.getLogger("aqi_assets.alerts")


@dataclass(frozen=True)
class Alert:
    """Something a person should know now: what kind, how bad, one line, and the numbers."""

    kind: str
    severity: str
    title: str
    text: str
    fields: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in ALERT_KINDS:
            raise ValueError(f"alert kind {self.kind!r} is not one of {list(ALERT_KINDS)}")


def slack_payload(alert: Alert) -> dict:
    """Slack incoming-webhook JSON: a plain ``text`` fallback plus Block Kit sections."""
    headline = f"{_ICONS.get(alert.severity, '')} [{alert.severity.upper()}] {alert.title}".strip()
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": headline[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": alert.text[:2900]}},
    ]
    if alert.fields:
        blocks.append({"type": "section", "fields": [
            {"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in list(alert.fields.items())[:10]
        ]})
    return {"text": f"{headline}: {alert.text}", "blocks": blocks,
            "metadata": {"event_type": f"aqi_{alert.kind}", "event_payload": {"severity": alert.severity}}}


def webhook_url(configured: str | None = None) -> str | None:
    return configured or os.environ.get(WEBHOOK_ENV_VAR) or None


def send_alert(alert: Alert, url: str | None = None, log: logging.Logger | None = None, timeout: float = 5.0) -> bool:
    """Log the alert; POST it to ``url`` (or ``AQI_ALERT_WEBHOOK_URL``) if set. True if delivered.

    Delivery problems are logged, never raised: an alert must not break the run that sends it.
    """
    log = log or logger
    line = f"ALERT {alert.kind} [{alert.severity}] {alert.title}: {alert.text}"
    (log.error if alert.severity in ("critical", "high") else log.warning)(line)
    target = webhook_url(url)
    if not target:
        return False
    try:
        response = requests.post(target, json=slack_payload(alert), timeout=timeout)
        response.raise_for_status()
        return True
    except requests.RequestException as exc:
        log.warning(f"alert webhook delivery failed ({type(exc).__name__}: {exc})")
        return False
