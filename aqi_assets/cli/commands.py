"""The control commands of ``aqi-retrain`` (status, check, trigger, history, config, metrics,
selftest, rollback): each asks the Dagster GraphQL API and returns data plus a readable table.
Every command that launches or changes something says which server and instance it acted on."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from tabulate import tabulate

from aqi_assets.cli.graphql import IN_FLIGHT, ApiError, DagsterApi, metadata_dict, tags_dict
from aqi_assets.cli.runs import duration, iso, retraining_metrics, run_record, tick_metrics
from aqi_assets.core.configuration.config import DEFAULT_CONFIG, MODEL_NAMES, ConfigError, RetrainingConfig, parse_config
from aqi_assets.core.monitoring.health import HEALTH_SENSOR
from aqi_assets.defs.monitoring.cursors import without_last_check
from aqi_assets.defs.run_tags import MODEL_TAG, REASON_TAG, RETRAINING_TAG, SEVERITY_TAG, TRIGGER_TYPE_TAG

SEVERITIES = ("low", "medium", "high", "critical")
CONFIG_ASSET = "retraining_config"
SELFTEST_ASSET = "station_graph"
RETRAINING_JOBS = {"manual_retraining", *(f"retrain_{m}" for m in MODEL_NAMES)}


def is_trigger_sensor(sensor: dict) -> bool:
    """A sensor that requests retrainings (not the ingestion sensor, not the run-status alerts)."""
    targets = {t["pipelineName"] for t in sensor.get("targets") or []}
    return sensor["sensorType"] == "STANDARD" and bool(targets & RETRAINING_JOBS)


def _version(value: Any) -> str:
    return "none" if value in (None, "", "none") else f"v{value}"


@dataclass
class Result:
    """What a command prints: ``data`` for ``--json``, ``text`` for people; ``exit_code`` 0 on success."""

    data: Any
    text: str
    exit_code: int = 0


def validate_model(model: str) -> str:
    if model not in MODEL_NAMES:
        raise ApiError(f"unknown model {model!r}: choose one of {', '.join(MODEL_NAMES)}", exit_code=2)
    return model


def describe_server(server: dict) -> str:
    """One line naming the server, the instance and the code location a command talked to."""
    instance = server["instance"]
    where = instance["home"] or "not reported by the server"
    storage = f" ({instance['run_storage']})" if instance["run_storage"] else ""
    return (f"Server {server['url']} (Dagster {server['dagster_version']}), instance {where}{storage}, "
            f"code location {server['code_location']}")


def _with_server(api: DagsterApi, result: Result) -> Result:
    """``result`` headed by the server, instance and code location it concerns (``server`` in the JSON)."""
    server = api.server()
    return Result({"server": server, **result.data}, f"{describe_server(server)}\n{result.text}", result.exit_code)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _num(value: Any, fmt: str = ".2f") -> str:
    return "-" if value is None else format(value, fmt)


# ---------------------------------------------------------------- status


def _instigator_rows(items: list[dict], state_key: str) -> list[dict]:
    rows = []
    for item in items:
        state = item[state_key]
        tick = (state["ticks"] or [None])[0]
        note = ""
        if tick:
            note = (tick.get("error") or {}).get("message") or tick.get("skipReason") or \
                (f"launched {len(tick['runIds'])} run(s)" if tick["runIds"] else "")
        rows.append({"name": item["name"], "status": state["status"],
                     "last_tick": tick["timestamp"] if tick else None,
                     "last_tick_status": tick["status"] if tick else None,
                     "last_tick_note": note.strip().splitlines()[0] if note.strip() else ""})
    return rows


def platform_health(api: DagsterApi) -> str:
    """What ``platform_health_sensor`` finds now (evaluated on the server, launches nothing)."""
    try:
        evaluation = api.sensor_dry_run(HEALTH_SENSOR)
    except ApiError as error:
        return f"not checked ({error})"
    return (evaluation.get("error") or {}).get("message") or evaluation.get("skipReason") or "not reported"


def status(api: DagsterApi) -> Result:
    repo = api.instigators(tick_limit=1)
    sensors = _instigator_rows(repo["sensors"], "sensorState")
    schedules = _instigator_rows(repo["schedules"], "scheduleState")
    in_flight = [{"run_id": r["runId"], "job": r["jobName"], "status": r["status"],
                  "model": tags_dict(r).get(MODEL_TAG), "trigger_type": tags_dict(r).get(TRIGGER_TYPE_TAG),
                  "created": r["creationTime"]}
                 for r in api.runs(tags={RETRAINING_TAG: "true"}, statuses=IN_FLIGHT)]
    latest = api.latest_materializations([f"{m}_promotion" for m in MODEL_NAMES])
    champions = []
    for model in MODEL_NAMES:
        found = latest[f"{model}_promotion"]
        meta = found[0]["metadata"] if found else {}
        champions.append({"model": model, "version": meta.get("to_version"), "action": meta.get("action"),
                          "trigger_type": meta.get("trigger_type"), "since": found[0]["timestamp"] if found else None,
                          "holdout_rmse": meta.get("holdout_rmse"), "holdout_within_20": meta.get("holdout_within_20")})
    health = platform_health(api)
    data = {"platform_health": health, "sensors": sensors, "schedules": schedules,
            "retrainings_in_flight": in_flight, "champions": champions}

    def instigator_table(rows):
        return tabulate([[r["name"], "on" if r["status"] == "RUNNING" else "off", iso(r["last_tick"]),
                          r["last_tick_status"] or "-", r["last_tick_note"][:70]] for r in rows],
                        headers=["name", "on/off", "last tick (UTC)", "result", "note"])

    flight = tabulate([[r["run_id"][:8], r["job"], r["model"] or "-", r["trigger_type"] or "-", r["status"],
                        iso(r["created"])] for r in in_flight],
                      headers=["run", "job", "model", "trigger", "status", "created (UTC)"]) \
        if in_flight else "none"
    champs = tabulate([[c["model"], c["version"] or "none", c["action"] or "-", c["trigger_type"] or "-",
                        iso(c["since"]), _num(c["holdout_rmse"]), _pct(c["holdout_within_20"])] for c in champions],
                      headers=["model", "champion", "last change", "trigger", "since (UTC)", "holdout RMSE",
                               "within ±20 %"])
    text = (f"Platform: {health}\n\nSensors\n{instigator_table(sensors)}\n\nSchedules\n"
            f"{instigator_table(schedules)}\n\nRetrainings queued or running\n{flight}\n\nChampions\n{champs}")
    return _with_server(api, Result(data, text))


# ---------------------------------------------------------------- check


def check(api: DagsterApi) -> Result:
    repo = api.instigators(tick_limit=0)
    results = []
    for sensor in filter(is_trigger_sensor, repo["sensors"]):
        cursor = (sensor["sensorState"].get("typeSpecificData") or {}).get("lastCursor")
        evaluation = api.sensor_dry_run(sensor["name"], without_last_check(cursor))  # checked now, whatever the interval
        requests = [{"job": r["jobName"], "run_key": r["runKey"], **{
            k.split("/", 1)[1]: v for k, v in tags_dict(r).items() if k.startswith("aqi/")}}
            for r in evaluation.get("runRequests") or []]
        error = (evaluation.get("error") or {}).get("message")
        results.append({"sensor": sensor["name"], "status": sensor["sensorState"]["status"],
                        "would_fire": bool(requests), "run_requests": requests,
                        "skip_reason": evaluation.get("skipReason"),
                        "error": error.strip().splitlines()[0] if error else None})
    rows = []
    for r in results:
        if r["error"]:
            rows.append([r["sensor"], "ERROR", r["error"][:90]])
        elif r["would_fire"]:
            for q in r["run_requests"]:
                rows.append([r["sensor"], f"would launch {q['job']}",
                             f"{q.get('trigger_type', '?')}/{q.get('severity', '?')}: {q.get('reason', '')}"[:90]])
        else:
            rows.append([r["sensor"], "no trigger", (r["skip_reason"] or "")[:90]])
    firing = sum(len(r["run_requests"]) for r in results)
    text = (tabulate(rows, headers=["trigger sensor", "verdict", "why"]) +
            f"\n\n{firing} retraining(s) would be requested; nothing was launched.")
    return Result({"sensors": results, "would_launch": firing}, text)


# ---------------------------------------------------------------- trigger / rollback


def _launch_and_report(api: DagsterApi, job: str, run_id: str, wait: bool, timeout: float) -> Result:
    if not wait:
        return Result({"run_id": run_id, "job": job, "status": "QUEUED"}, f"launched {job}: run {run_id}")
    run = api.wait_for_run(run_id, timeout=timeout)
    record = run_record(run, api.run_events([run_id])[run_id])
    lines = [f"{job}: run {run_id} {run['status']} in {duration(record['duration_seconds'])}"]
    if record["gates"]:
        lines.append("gates: " + ", ".join(f"{k} {'passed' if v else 'FAILED'}" for k, v in record["gates"].items()))
    if record["promotion"]:
        p = record["promotion"]
        lines.append(f"{p['action']}: {p['model']} {_version(p['from_version'])} → {_version(p['to_version'])}")
    if record["error"]:
        lines.append(f"error: {record['error']}")
    return Result(record, "\n".join(lines), 0 if run["status"] == "SUCCESS" else 1)


def trigger(api: DagsterApi, model: str, reason: str, severity: str, wait: bool, timeout: float) -> Result:
    validate_model(model)
    tags = {RETRAINING_TAG: "true", MODEL_TAG: model, TRIGGER_TYPE_TAG: "manual", SEVERITY_TAG: severity,
            REASON_TAG: reason}
    run_id = api.launch("manual_retraining", {"model": model, "reason": reason, "severity": severity}, tags)
    return _with_server(api, _launch_and_report(api, "manual_retraining", run_id, wait, timeout))


def rollback(api: DagsterApi, model: str, reason: str, to_version: str | None, wait: bool,
             timeout: float) -> Result:
    validate_model(model)
    config = {"action": "rollback", "reason": reason, **({"to_version": to_version} if to_version else {})}
    job = f"rollback_{model}"
    run_id = api.launch(job, {"ops": {f"{model}_promotion": {"config": config}}},
                        {MODEL_TAG: model, TRIGGER_TYPE_TAG: "manual", REASON_TAG: reason})
    return _with_server(api, _launch_and_report(api, job, run_id, wait, timeout))


# ---------------------------------------------------------------- history / metrics


def retraining_records(api: DagsterApi, days: int) -> list[dict]:
    runs = api.runs(tags={RETRAINING_TAG: "true"}, created_after=time.time() - days * 86400)
    events = api.run_events([r["runId"] for r in runs])
    return [run_record(r, events[r["runId"]]) for r in runs]


def history(api: DagsterApi, days: int) -> Result:
    records = retraining_records(api, days)
    rows = []
    for r in records:
        gates = "-" if r["gates_passed"] is None else (
            f"{sum(r['gates'].values())}/{len(r['gates'])} passed" if r["gates_passed"]
            else "FAILED: " + ", ".join(k for k, v in r["gates"].items() if not v))
        p = r["promotion"]
        promotion = f"{_version(p['from_version'])} → {_version(p['to_version'])}" if p else "-"
        outcome = r["outcome"] + (f": {r['error'][:60]}" if r["error"] else "")
        rows.append([iso(r["created"]), r["run_id"][:8], r["model"] or "-",
                     f"{r['trigger_type']}/{r['severity'] or '-'}", (r["reason"] or "")[:40], outcome,
                     duration(r["duration_seconds"]), gates, promotion])
    table = tabulate(rows, headers=["created (UTC)", "run", "model", "trigger", "reason", "outcome", "duration",
                                    "gates", "promotion"]) if rows else "no retraining runs"
    return Result({"days": days, "runs": records}, f"Retraining runs of the last {days} day(s)\n{table}")


def promotion_history(api: DagsterApi, model: str) -> Result:
    """Every change of ``model``'s serving version (newest first), from its promotion asset's ``history``."""
    validate_model(model)
    latest = api.latest_materializations([f"{model}_promotion"]).get(f"{model}_promotion") or []
    changes = latest[0]["metadata"].get("history", []) if latest else []
    text = tabulate(changes, headers="keys") if changes else f"{model}: no promotion recorded yet"
    return Result({"model": model, "changes": changes},
                  f"Serving versions of aqi_predictor_{model}, newest first\n{text}")


def metrics(api: DagsterApi, days: int) -> Result:
    records = retraining_records(api, days)
    repo = api.instigators(day_range=days, tick_limit=None)
    triggers = [s for s in repo["sensors"] if is_trigger_sensor(s)]
    data = {"days": days, **tick_metrics(triggers), **retraining_metrics(records)}
    rows = [
        ["trigger-check success rate", _pct(data["trigger_check_success_rate"]),
         f"{data['trigger_checks'] - data['failed_checks']} of {data['trigger_checks']} sensor ticks without error"],
        ["retraining success rate", _pct(data["retraining_success_rate"]),
         f"{data['successful_runs']} of {data['finished_runs']} finished retraining runs ({data['kept_by_gate']} "
         f"kept the champion at a gate; {data['failed_runs']} failed)"],
        ["average retraining duration", duration(data["average_duration_seconds"]),
         f"over {data['finished_runs']} finished run(s)"],
        ["promotion rate", _pct(data["promotion_rate"]),
         f"{data['promotions']} promotion(s) in {data['finished_runs']} finished run(s)"],
    ]
    return Result(data, f"Last {days} day(s)\n" + tabulate(rows, headers=["metric", "value", "from"]))


# ---------------------------------------------------------------- config


def parse_assignments(pairs: list[str]) -> dict[str, str]:
    changes = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ApiError(f"expected key=value, got {pair!r} (e.g. gates.max_rmse=22)", exit_code=2)
        changes[key.strip()] = value.strip()
    return changes


def _recorded_config(api: DagsterApi) -> tuple[dict, RetrainingConfig, list[dict]]:
    """The latest ``retraining_config`` materialization's metadata, its config, and the raw entry."""
    found = api.latest_materializations([CONFIG_ASSET])[CONFIG_ASSET]
    meta = found[0]["metadata"] if found else {}
    return meta, parse_config(meta.get("config")), found


def config_show(api: DagsterApi) -> Result:
    meta, config, found = _recorded_config(api)
    version = meta.get("version", 0)
    settings = config.flat()
    recorded = iso(found[0]["timestamp"]) if found else "never changed: built-in defaults"
    rows = [[key, value] for key, value in settings.items()]
    text = f"retraining_config v{version} ({recorded})\n" + tabulate(rows, headers=["setting", "value"])
    return Result({"version": version, "recorded": found[0]["timestamp"] if found else None, "settings": settings},
                  text)


#: The job that records a configuration change (defs/config/assets.py).
CONFIG_JOB = "retraining_config_job"


def config_set(api: DagsterApi, pairs: list[str], reset: bool, timeout: float) -> Result:
    changes = parse_assignments(pairs)
    if not changes and not reset:
        raise ApiError("nothing to set: give key=value pairs (or --reset)", exit_code=2)
    meta, in_force, _ = _recorded_config(api)
    try:  # every check that needs no server first: nothing is launched for a change that cannot pass
        (DEFAULT_CONFIG if reset else in_force).with_overrides(changes)
    except ConfigError as error:
        raise ApiError(f"rejected configuration change: {error}; nothing was launched or recorded",
                       exit_code=2) from error
    run_config = {"ops": {CONFIG_ASSET: {"config": {"set": changes, "reset": reset}}}}
    run_id = api.launch(CONFIG_JOB, run_config)
    run = api.wait_for_run(run_id, timeout=timeout, poll=0.25)
    events = api.run_events([run_id])[run_id]
    record = run_record(run, events)
    if run["status"] != "SUCCESS":
        raise ApiError(record["error"] or f"configuration run {run_id} ended {run['status']}")
    rejected = next((metadata_dict(e.get("metadataEntries"))["rejected"] for e in events
                     if e["__typename"] == "ObservationEvent"
                     and "rejected" in metadata_dict(e.get("metadataEntries"))), None)
    if rejected:
        raise ApiError(f"rejected configuration change: {rejected}; nothing was recorded (run {run_id[:8]})",
                       exit_code=2)
    shown = config_show(api)
    changed = {k: shown.data["settings"].get(k) for k in changes}
    text = (f"retraining_config v{shown.data['version']} recorded (run {run_id[:8]})\n" +
            tabulate([[k, v] for k, v in changed.items()], headers=["setting", "now"]))
    return _with_server(api, Result({"run_id": run_id, "version": shown.data["version"], "changed": changed,
                                  "settings": shown.data["settings"]}, text))


# ---------------------------------------------------------------- selftest


def selftest(api: DagsterApi, timeout: float) -> Result:
    """Reach the server, find the code location, launch a cheap asset run and see it succeed."""
    steps: list[dict] = []

    def step(name: str, action):
        started = time.monotonic()
        detail = action()
        steps.append({"step": name, "ok": True, "detail": detail, "seconds": time.monotonic() - started})
        return detail

    step("server answers", lambda: f"Dagster {api.server()['dagster_version']} at {api.url}")
    step("code location loaded", lambda: "{repositoryLocationName}/{repositoryName}".format(**api.repository()) +
         f", {len(api.instigators(tick_limit=0)['sensors'])} sensors")
    run_id = step("run launched (token accepted)",
                  lambda: api.launch(api.asset_job(SELFTEST_ASSET), asset_selection=[SELFTEST_ASSET]))
    run = step("run dequeued and finished", lambda: api.wait_for_run(run_id, timeout=timeout))
    ok = run["status"] == "SUCCESS"
    steps[-1].update(ok=ok, detail=f"{SELFTEST_ASSET} run {run_id[:8]} {run['status']}")
    text = tabulate([[s["step"], "ok" if s["ok"] else "FAILED", s["detail"], f"{s['seconds']:.1f}s"] for s in steps],
                    headers=["step", "result", "detail", "time"])
    text += "\n\nselftest " + ("passed" if ok else "FAILED")
    return _with_server(api, Result({"passed": ok, "run_id": run_id, "steps": steps}, text, 0 if ok else 1))
