"""Run tags that say why a run exists (``aqi/*``), and reading a run's trigger back from them."""

from collections.abc import Mapping

#: The sensors whose ticks are the platform's trigger checks.
TRIGGER_SENSORS: tuple[str, ...] = ("performance_degradation_sensor", "data_drift_sensor", "scheduled_retraining_sensor")

RETRAINING_TAG = "aqi/retraining"
MODEL_TAG = "aqi/model"
TRIGGER_TYPE_TAG = "aqi/trigger_type"
SEVERITY_TAG = "aqi/severity"
REASON_TAG = "aqi/reason"
TRIGGER_KEY_TAG = "aqi/trigger_key"
#: What a retraining run came to: promoted, kept_by_gate (a gate kept the champion), deduplicated.
OUTCOME_TAG = "aqi/outcome"
#: The gate that kept the champion (with ``aqi/outcome=kept_by_gate``).
GATE_TAG = "aqi/gate"
#: The identical waiting request a deduplicated manual run joined.
DEDUPLICATED_INTO_TAG = "aqi/deduplicated_into"


def trigger_of_run(tags: Mapping[str, str], reason: str = "", severity: str = "") -> dict:
    """The run's trigger: its ``aqi/*`` tags, else the manual config, else a UI materialization."""
    trigger_type = tags.get(TRIGGER_TYPE_TAG) or "manual"
    return {
        "trigger_type": trigger_type,
        "severity": tags.get(SEVERITY_TAG) or severity or "medium",
        "reason": tags.get(REASON_TAG) or reason or "materialized by hand (no trigger tags on the run)",
        "key": tags.get(TRIGGER_KEY_TAG, ""),
    }
