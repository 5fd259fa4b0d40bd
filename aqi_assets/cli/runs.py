"""Retraining runs as the CLI reports them: one record per run (trigger, outcome, gates,
promotion) and the rates computed from those records and from sensor ticks."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from aqi_assets.cli.graphql import FINISHED, metadata_dict, tags_dict
from aqi_assets.core.configuration.config import MODEL_NAMES
from aqi_assets.defs.run_tags import MODEL_TAG, OUTCOME_TAG, REASON_TAG, SEVERITY_TAG, TRIGGER_TYPE_TAG


def iso(timestamp: float | None) -> str:
    if not timestamp:
        return "-"
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m {secs:02d}s" if minutes else f"{seconds:.1f}s"


def _model_of(asset_path: list[str]) -> str | None:
    name = asset_path[-1] if asset_path else ""
    for model in MODEL_NAMES:
        if name in (f"{model}_model", f"{model}_promotion"):
            return model
    return None


def run_record(run: dict, events: list[dict]) -> dict[str, Any]:
    """What one run did: trigger (tags), outcome, gate results, promotion and first error."""
    tags = tags_dict(run)
    gates: dict[str, bool] = {}
    gate_notes: dict[str, str] = {}
    promotion = None
    error = None
    models = set()
    for event in events:
        kind = event.get("__typename")
        if kind == "AssetCheckEvaluationEvent":
            evaluation = event["evaluation"]
            gates[evaluation["checkName"]] = bool(evaluation["success"])
            gate_notes[evaluation["checkName"]] = evaluation.get("description") or ""
            models.add(_model_of(evaluation["assetKey"]["path"]))
        elif kind == "MaterializationEvent":
            path = (event.get("assetKey") or {}).get("path") or []
            model = _model_of(path)
            if model:
                models.add(model)
            if path and path[-1].endswith("_promotion"):
                meta = metadata_dict(event["metadataEntries"])
                promotion = {"model": model, "action": meta.get("action"), "from_version": meta.get("from_version"),
                             "to_version": meta.get("to_version"), "reason": meta.get("reason")}
        elif kind == "ExecutionStepFailureEvent" and error is None:
            failure = event.get("failureMetadata") or {}
            error = failure.get("description") or (event.get("error") or {}).get("message")
        elif kind == "RunFailureEvent" and error is None:
            error = event.get("message")
    models.discard(None)
    failed_gates = [name for name, passed in gates.items() if not passed]
    if failed_gates and (error is None or "blocking asset check" in error):  # says which gate, and why
        error = f"gate {failed_gates[0]} failed: {gate_notes[failed_gates[0]]}"
    start, end = run.get("startTime"), run.get("endTime")
    return {
        "run_id": run["runId"],
        "job": run["jobName"],
        "model": tags.get(MODEL_TAG) or (sorted(models)[0] if models else None),
        "trigger_type": tags.get(TRIGGER_TYPE_TAG) or "manual",
        "severity": tags.get(SEVERITY_TAG),
        "reason": tags.get(REASON_TAG),
        "status": run["status"],
        "created": run.get("creationTime"),
        "duration_seconds": (end - start) if start is not None and end is not None else None,
        "gates": gates,
        "gates_passed": all(gates.values()) if gates else None,
        "gate_notes": {k: v for k, v in gate_notes.items() if not gates[k]},
        "promotion": promotion,
        "outcome": _outcome(run, tags, promotion, failed_gates),
        "error": (error or "").strip().splitlines()[0] if error else None,
    }


def _outcome(run: dict, tags: dict, promotion: dict | None, failed_gates: list[str]) -> str:
    """promoted, rolled_back, kept_by_gate, deduplicated, failed, or the run's status."""
    if tags.get(OUTCOME_TAG):
        return tags[OUTCOME_TAG]
    if run["status"] == "FAILURE":
        return "failed"
    if promotion:
        return "promoted" if promotion.get("action") == "promote" else "rolled_back"
    return "kept_by_gate" if failed_gates else run["status"].lower()


def _rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def retraining_metrics(records: list[dict]) -> dict[str, Any]:
    """Success rate, mean duration and promotion rate of finished retraining runs.

    A gate that kept the champion is a success (the platform did its job), counted apart; a
    deduplicated request is not a retraining and is left out.
    """
    deduplicated = [r for r in records if r.get("outcome") == "deduplicated"]
    records = [r for r in records if r.get("outcome") != "deduplicated"]
    finished = [r for r in records if r["status"] in FINISHED]
    succeeded = [r for r in finished if r["status"] == "SUCCESS"]
    durations = [r["duration_seconds"] for r in finished if r["duration_seconds"] is not None]
    promoted = [r for r in finished if (r["promotion"] or {}).get("action") == "promote"]
    return {
        "retraining_runs": len(records),
        "finished_runs": len(finished),
        "successful_runs": len(succeeded),
        "failed_runs": len(finished) - len(succeeded),
        "kept_by_gate": sum(1 for r in finished if r.get("outcome") == "kept_by_gate"),
        "deduplicated_requests": len(deduplicated),
        "retraining_success_rate": _rate(len(succeeded), len(finished)),
        "average_duration_seconds": sum(durations) / len(durations) if durations else None,
        "promotions": len(promoted),
        "promotion_rate": _rate(len(promoted), len(finished)),
    }


def tick_metrics(sensors: list[dict]) -> dict[str, Any]:
    """Trigger checks (sensor ticks) that evaluated without error, per sensor and overall."""
    per_sensor = {}
    total = failed = 0
    for sensor in sensors:
        ticks = sensor["sensorState"]["ticks"]
        done = [t for t in ticks if t["status"] != "STARTED"]
        bad = sum(1 for t in done if t["status"] == "FAILURE")
        per_sensor[sensor["name"]] = {"ticks": len(done), "failed": bad,
                                      "fired": sum(1 for t in done if t["status"] == "SUCCESS")}
        total, failed = total + len(done), failed + bad
    return {"trigger_checks": total, "failed_checks": failed,
            "trigger_check_success_rate": _rate(total - failed, total), "per_sensor": per_sensor}
