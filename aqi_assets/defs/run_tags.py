"""Run tags that say why a run exists (``aqi/*``), and reading a run's trigger back from them."""

from collections.abc import Mapping

RETRAINING_TAG = "aqi/retraining"
MODEL_TAG = "aqi/model"
TRIGGER_TYPE_TAG = "aqi/trigger_type"
SEVERITY_TAG = "aqi/severity"
REASON_TAG = "aqi/reason"
TRIGGER_KEY_TAG = "aqi/trigger_key"


def trigger_of_run(tags: Mapping[str, str], reason: str = "", severity: str = "") -> dict:
    """The run's trigger: its ``aqi/*`` tags, else the manual config, else a UI materialization."""
    trigger_type = tags.get(TRIGGER_TYPE_TAG) or "manual"
    return {
        "trigger_type": trigger_type,
        "severity": tags.get(SEVERITY_TAG) or severity or "medium",
        "reason": tags.get(REASON_TAG) or reason or "materialized by hand (no trigger tags on the run)",
        "key": tags.get(TRIGGER_KEY_TAG, ""),
    }
