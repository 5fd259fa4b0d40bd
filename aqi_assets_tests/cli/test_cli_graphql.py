"""``aqi-retrain`` control commands against a real ``aqi-webserver`` and ``dagster-daemon``.

One platform per module: a temporary Dagster home with the deployed ``dagster.yaml`` (queued
runs, one retraining at a time), a lake of 40 simulated days, its own MLflow store, the
in-process executor, and the two server processes. The tests run in file order: selftest, config, check, trigger, history,
status, metrics, rollback.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest
import requests

from aqi_assets.cli.graphql import DagsterApi
from aqi_assets.cli.main import main
from aqi_assets.core.configuration.store import current_config
from aqi_assets.core.data.lake import Lake
from aqi_assets.core.monitoring.checks import SCHEDULE_DATASET, adapt_schedule
from aqi_assets.core.data.sources.simulated import SimulatedSource

PROJECT = Path(__file__).resolve().parents[2]
TOKEN = "aqi-cli-" + secrets.token_urlsafe(24)
START = date(2024, 1, 1)
DAYS = 40
SOURCE = f"simulated:seed=7,stations=6,start={START},end={START + timedelta(days=DAYS - 1)}"
FAST_SETTINGS = {"training.window_days": "36", "training.validation_days": "5", "training.holdout_days": "5",
                 "training.preset": "fast", "gates.min_within_20": "0.5"}
TRIGGER_SENSORS = {"performance_degradation_sensor", "data_drift_sensor", "scheduled_retraining_sensor"}

pytestmark = pytest.mark.timeout(600)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _script(name: str, module: str) -> list[str]:
    script = Path(sys.executable).with_name(name)
    return [str(script)] if script.exists() else [sys.executable, "-m", module]


@dataclass
class Platform:
    url: str
    home: Path
    lake: Lake
    processes: list[subprocess.Popen]
    logs: list[Path]

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-4000:] for p in self.logs)

    def run_count(self) -> int:
        with dg.DagsterInstance.from_config(str(self.home)) as instance:
            return len(instance.get_runs())


def _start(command: list[str], env: dict, log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(command, cwd=PROJECT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _stop(process: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):  # the code servers share the process group
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass


def _wait_until_ready(platform: Platform, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    query = {"query": "{ repositoriesOrError { ... on RepositoryConnection { nodes { name } } } }"}
    while time.monotonic() < deadline:
        for process in platform.processes:
            assert process.poll() is None, f"a platform process exited early:\n{platform.log_text()}"
        try:
            answer = requests.post(f"{platform.url}/graphql", json=query, timeout=5).json()
            if answer["data"]["repositoriesOrError"].get("nodes"):
                return
        except (requests.ConnectionError, requests.Timeout, KeyError, ValueError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"the webserver did not become ready:\n{platform.log_text()}")


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-platform")
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    with (home / "dagster.yaml").open("a") as settings:  # the deployed queue, polled every second
        settings.write("\nrun_queue:\n  dequeue_interval_seconds: 1\n")
    with dg.DagsterInstance.from_config(str(home)):  # storage created here: two processes creating it at once
        pass                                           # can leave the run database with two schema heads
    lake = Lake(root / "lake")
    source = SimulatedSource(seed=7, n_stations=6, start=START, end=START + timedelta(days=DAYS - 1))
    for i in range(DAYS):
        day = START + timedelta(days=i)
        lake.write_frame("observations", day.isoformat(), source.read_day(day))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AQI_API_TOKEN")}
    env.update(DAGSTER_HOME=str(home), AQI_LAKE_DIR=str(lake.root), AQI_SOURCE=SOURCE,
               MLFLOW_TRACKING_URI=f"sqlite:///{root / 'mlflow.db'}", AQI_MLFLOW_ARTIFACTS=str(root / "artifacts"),
               AQI_API_TOKEN=TOKEN, AQI_EXECUTOR="in_process")  # one process per run: faster on 2 cores
    port = _free_port()
    logs = [root / "webserver.log", root / "daemon.log"]
    processes = []
    try:
        processes.append(_start([*_script("aqi-webserver", "aqi_assets.server.app"), "-w", "workspace.yaml",
                                 "-p", str(port)], env, logs[0]))
        processes.append(_start([*_script("dagster-daemon", "dagster._daemon"), "run", "-w", "workspace.yaml"],
                                env, logs[1]))
        running = Platform(f"http://127.0.0.1:{port}", home, lake, processes, logs)
        _wait_until_ready(running)
        previous = {k: os.environ.get(k) for k in ("AQI_DAGSTER_URL", "AQI_API_TOKEN", "AQI_API_TOKEN_FILE")}
        os.environ.update(AQI_DAGSTER_URL=running.url, AQI_API_TOKEN=TOKEN)
        os.environ.pop("AQI_API_TOKEN_FILE", None)
        try:
            yield running
        finally:
            for key, value in previous.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    finally:
        for process in processes:
            _stop(process)


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def cli_json(capsys, *argv: str):
    code, out, err = cli(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


# ---------------------------------------------------------------- errors without a platform


def test_unknown_model_is_refused_before_contacting_the_server(capsys):
    code, out, err = cli(capsys, "trigger", "--model", "prophet", "--reason", "x", "--url", "http://127.0.0.1:9")
    assert code == 2 and out == ""
    assert err.strip() == "aqi-retrain trigger: error: unknown model 'prophet': choose one of xgboost, lstm, gnn"
    code, _, err = cli(capsys, "rollback", "--model", "arima", "--url", "http://127.0.0.1:9")
    assert code == 2 and "choose one of xgboost, lstm, gnn" in err


def test_server_down_is_a_one_line_error(capsys):
    url = f"http://127.0.0.1:{_free_port()}"
    code, out, err = cli(capsys, "status", "--url", url)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and f"cannot reach the Dagster server at {url}" in err


# ---------------------------------------------------------------- a real platform


def test_refused_token_is_a_one_line_error(platform, capsys, monkeypatch):
    monkeypatch.setenv("AQI_API_TOKEN", "wrong-" + TOKEN)
    before = platform.run_count()
    code, _, err = cli(capsys, "trigger", "--model", "xgboost", "--reason", "should be refused")
    assert code == 1 and err.count("\n") == 1
    assert "refused the request (401" in err and "AQI_API_TOKEN" in err and TOKEN not in err
    assert platform.run_count() == before


def _server_line(platform: Platform) -> str:
    return (f"Server {platform.url} (Dagster {dg.__version__}), instance {platform.home} (SqliteRunStorage), "
            "code location aqi_assets")


def test_selftest_runs_a_job_through_the_queue(platform, capsys):
    report = cli_json(capsys, "selftest", "--timeout", "240")
    assert report["passed"] is True
    assert report["server"] == {"url": platform.url, "dagster_version": dg.__version__,
                                "instance": {"home": str(platform.home), "run_storage": "SqliteRunStorage"},
                                "code_location": "aqi_assets", "repository": "__repository__"}
    assert [s["step"] for s in report["steps"]] == ["server answers", "code location loaded",
                                                    "run launched (token accepted)", "run dequeued and finished"]
    with dg.DagsterInstance.from_config(str(platform.home)) as instance:
        run = instance.get_run_by_id(report["run_id"])
        assert run.status == dg.DagsterRunStatus.SUCCESS and run.asset_selection == {dg.AssetKey("station_graph")}


def test_ingest_backfills_a_range_of_days_and_reports_each(platform, capsys):
    first, last = START + timedelta(days=DAYS - 3), START + timedelta(days=DAYS - 1)
    report = cli_json(capsys, "ingest", "--from", first.isoformat(), "--to", last.isoformat(), "--timeout", "300")
    assert (report["days"], report["succeeded"], report["failed"]) == (3, 3, {})
    assert report["first"] == first.isoformat() and report["server"]["url"] == platform.url
    assert report["server"]["instance"]["home"] == str(platform.home)
    for i in range(3):
        quality = platform.lake.read_json("observation_quality", (first + timedelta(days=i)).isoformat())
        assert quality["fit_for_training"] is True and len(quality["checks"]) == 7
    code, _, err = cli(capsys, "ingest", "--from", "2023-12-30", "--to", START.isoformat())
    assert code == 2
    assert f"2 day(s) are not days of the source (first 2023-12-30); its days are {START}.." in err


def test_config_set_changes_what_show_prints_and_rejects_bad_values(platform, capsys):
    shown = cli_json(capsys, "config", "show")
    assert shown["version"] == 0 and shown["settings"]["gates.max_rmse"] == 25.0

    started = time.monotonic()
    changed = cli_json(capsys, "config", "set", *[f"{k}={v}" for k, v in FAST_SETTINGS.items()])
    with capsys.disabled():  # the figure docs/cli.md reports
        print(f"\nconfig set: accepted and recorded in {time.monotonic() - started:.1f} s")
    assert changed["run_id"] and changed["version"] == 1 and changed["changed"]["training.preset"] == "fast"
    assert (changed["server"]["url"], changed["server"]["instance"]["home"]) == (platform.url, str(platform.home))
    code, text, _ = cli(capsys, "config", "show")
    assert code == 0 and "retraining_config v1" in text
    line = next(row for row in text.splitlines() if row.startswith("training.window_days"))
    assert line.split() == ["training.window_days", "36"]
    assert cli_json(capsys, "config", "show")["settings"]["gates.min_within_20"] == 0.5

    runs = platform.run_count()
    code, _, err = cli(capsys, "config", "set", "gates.max_rmse=lots")
    assert code == 2 and "rejected configuration change: gates.max_rmse:" in err and err.count("\n") == 1
    assert "nothing was launched or recorded" in err
    code, _, err = cli(capsys, "config", "set", "gates.no_such_gate=3")
    assert code == 2 and "gates.no_such_gate" in err and "unknown setting" in err
    code, _, err = cli(capsys, "config", "set", "operations.report_cron=every monday")
    assert code == 2 and "operations.report_cron: 'every monday' is not a cron expression" in err
    assert platform.run_count() == runs  # rejected before anything was launched
    code, _, err = cli(capsys, "config", "set", "gates.max_rmse")
    assert code == 2 and "expected key=value" in err
    assert cli_json(capsys, "config", "show")["version"] == 1  # nothing recorded for the rejected changes


def test_check_evaluates_the_trigger_sensors_and_launches_nothing(platform, capsys):
    before = platform.run_count()
    report = cli_json(capsys, "check")
    assert {s["sensor"] for s in report["sensors"]} == TRIGGER_SENSORS
    by_name = {s["sensor"]: s for s in report["sensors"]}
    assert by_name["performance_degradation_sensor"]["skip_reason"] == "no model_performance scores stored yet"
    assert report["would_launch"] == 0 and not any(s["error"] for s in report["sensors"])

    # With a retraining schedule in force, the never-trained models are due: check says so, launches nothing.
    # (The daemon ticked the sensor at start and waits check_interval_minutes before the next tick.)
    schedule = platform.lake.write_json(SCHEDULE_DATASET, None, adapt_schedule(
        platform.lake, current_config(platform.lake), START + timedelta(days=DAYS - 1)))
    try:
        report = cli_json(capsys, "check")
        code, text, _ = cli(capsys, "check")
    finally:
        schedule.unlink()
    scheduled = {s["sensor"]: s for s in report["sensors"]}["scheduled_retraining_sensor"]
    assert scheduled["would_fire"] and report["would_launch"] == 3
    assert sorted((r["job"], r["model"], r["trigger_type"]) for r in scheduled["run_requests"]) == [
        ("retrain_gnn", "gnn", "schedule"), ("retrain_lstm", "lstm", "schedule"),
        ("retrain_xgboost", "xgboost", "schedule")]
    assert code == 0 and "would launch retrain_lstm" in text and "3 retraining(s) would be requested" in text
    assert "nothing was launched" in text
    assert platform.run_count() == before


def test_manual_trigger_runs_to_success_and_is_in_history(platform, capsys):
    launched = cli_json(capsys, "trigger", "--model", "xgboost", "--reason", "cli test: sensor replaced",
                        "--severity", "high")
    assert launched["server"]["instance"]["home"] == str(platform.home)
    in_flight = cli_json(capsys, "status")["retrainings_in_flight"]
    assert [(r["run_id"], r["model"], r["trigger_type"]) for r in in_flight] == [
        (launched["run_id"], "xgboost", "manual")]
    assert in_flight[0]["status"] in {"QUEUED", "NOT_STARTED", "STARTING", "STARTED"}
    assert DagsterApi().wait_for_run(launched["run_id"], timeout=420)["status"] == "SUCCESS"

    run = cli_json(capsys, "history", "--days", "1")["runs"][0]
    assert run["run_id"] == launched["run_id"]
    assert run["status"] == "SUCCESS" and run["model"] == "xgboost" and run["trigger_type"] == "manual"
    assert run["gates_passed"] is True and len(run["gates"]) == 4
    assert run["promotion"] == {"model": "xgboost", "action": "promote", "from_version": "none", "to_version": "1",
                                "reason": "cli test: sensor replaced"}
    with dg.DagsterInstance.from_config(str(platform.home)) as instance:
        tags = instance.get_run_by_id(run["run_id"]).tags
    assert {k: tags[k] for k in ("aqi/retraining", "aqi/model", "aqi/trigger_type", "aqi/severity", "aqi/reason")} \
        == {"aqi/retraining": "true", "aqi/model": "xgboost", "aqi/trigger_type": "manual",
            "aqi/severity": "high", "aqi/reason": "cli test: sensor replaced"}

    history = cli_json(capsys, "history", "--days", "1")
    assert [r["run_id"] for r in history["runs"]] == [run["run_id"]]
    record = history["runs"][0]
    assert (record["reason"], record["status"], record["severity"]) == ("cli test: sensor replaced", "SUCCESS", "high")
    assert record["promotion"]["to_version"] == "1" and record["gates_passed"] is True
    code, text, _ = cli(capsys, "history")
    assert code == 0 and run["run_id"][:8] in text and "cli test: sensor replaced" in text
    assert "promoted" in text and "4/4 passed" in text and "none → v1" in text

    changes = cli_json(capsys, "history", "--model", "xgboost", "--promotions")["changes"]
    assert [(c["from"], c["to"], c["action"], c["trigger"], c["reason"]) for c in changes] == [
        ("-", "v1", "promote", "manual", "cli test: sensor replaced")]
    assert 0 < changes[0]["holdout RMSE"] < 100 and re.fullmatch(r"\d{4}-\d\d-\d\d", changes[0]["serves from"])
    code, text, _ = cli(capsys, "history", "--model", "xgboost", "--promotions")
    assert code == 0 and "Serving versions of aqi_predictor_xgboost" in text and "cli test: sensor replaced" in text
    code, _, err = cli(capsys, "history", "--promotions")
    assert code != 0 and "needs --model" in err


def test_status_lists_sensors_schedules_and_the_champion(platform, capsys):
    report = cli_json(capsys, "status")
    sensors = {s["name"]: s for s in report["sensors"]}
    assert set(sensors) >= TRIGGER_SENSORS | {"observations_arrival_sensor", "retraining_failure_alert"}
    assert sensors["data_drift_sensor"]["status"] == "RUNNING"
    assert sensors["observations_arrival_sensor"]["status"] == "STOPPED"
    assert "adapt_retraining_schedule" in {s["name"] for s in report["schedules"]}
    assert report["retrainings_in_flight"] == []
    assert "automation: automated retraining on" in report["platform_health"]
    champions = {c["model"]: c for c in report["champions"]}
    assert champions["xgboost"]["version"] == "1" and champions["xgboost"]["trigger_type"] == "manual"
    assert 0 < champions["xgboost"]["holdout_rmse"] < 100
    assert champions["lstm"]["version"] is None
    assert report["server"]["url"] == platform.url
    code, text, _ = cli(capsys, "status")
    assert code == 0 and "Champions" in text and "data_drift_sensor" in text
    assert text.splitlines()[0] == _server_line(platform)
    xgboost_row = next(row for row in text.splitlines() if row.startswith("xgboost"))
    assert xgboost_row.split()[:3] == ["xgboost", "1", "promote"]


def test_metrics_agree_with_the_runs(platform, capsys):
    figures = cli_json(capsys, "metrics", "--days", "1")
    history = cli_json(capsys, "history", "--days", "1")["runs"]
    assert figures["retraining_runs"] == figures["finished_runs"] == len(history) == 1
    assert figures["retraining_success_rate"] == 1.0 and figures["promotion_rate"] == 1.0
    assert figures["average_duration_seconds"] == pytest.approx(history[0]["duration_seconds"])
    assert figures["trigger_checks"] >= 3  # the daemon ticked every trigger sensor at least once
    assert figures["failed_checks"] == 0 and figures["trigger_check_success_rate"] == 1.0
    code, text, _ = cli(capsys, "metrics", "--days", "1")
    assert code == 0 and "promotion rate" in text and "100%" in text


def test_rollback_without_a_previous_champion_fails_clearly(platform, capsys):
    code, out, _ = cli(capsys, "rollback", "--model", "xgboost", "--reason", "cli test", "--wait", "--timeout",
                       "240")
    assert code == 1
    assert out.splitlines()[0] == _server_line(platform)
    assert "rollback_xgboost: run" in out and "FAILURE" in out
    assert "no previous_champion to roll back to" in out
    assert cli_json(capsys, "status")["champions"][0]["version"] == "1"


def test_manual_retraining_submitted_by_a_graphql_client_with_run_config_only_is_in_history(platform, capsys):
    """``DagsterGraphQLClient.submit_job_execution`` with run config and no tags: the run still carries
    its model, reason and severity (tagged in its first step), so history and status show them."""
    from dagster_graphql import DagsterGraphQLClient

    host, port = platform.url.removeprefix("http://").split(":")
    client = DagsterGraphQLClient(host, port_number=int(port), headers={"Authorization": f"Bearer {TOKEN}"})
    run_id = client.submit_job_execution("manual_retraining", run_config={
        "model": "lstm", "reason": "graphql client: new sensor firmware", "severity": "critical"})
    assert DagsterApi().wait_for_run(run_id, timeout=420)["status"] == "SUCCESS"
    record = next(r for r in cli_json(capsys, "history", "--days", "1")["runs"] if r["run_id"] == run_id)
    assert (record["model"], record["trigger_type"], record["severity"], record["reason"]) == (
        "lstm", "manual", "critical", "graphql client: new sensor firmware")
    with dg.DagsterInstance.from_config(str(platform.home)) as instance:
        tags = instance.get_run_by_id(run_id).tags
    assert (tags["aqi/model"], tags["aqi/severity"], tags["aqi/reason"]) == (
        "lstm", "critical", "graphql client: new sensor firmware")
    code, text, _ = cli(capsys, "history")
    assert code == 0 and run_id[:8] in text and "manual/critical" in text and "graphql client: new sensor" in text


def _sensor_ticks(platform: Platform, name: str, after: float) -> list:
    from dagster._core.scheduler.instigation import InstigatorType, TickStatus

    with dg.DagsterInstance.from_config(str(platform.home)) as instance:
        state = next(s for s in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR) if s.name == name)
        ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, after=float(after))
    return sorted((t for t in ticks if t.status != TickStatus.STARTED), key=lambda t: t.timestamp)


def _wait_for_tick(platform: Platform, name: str, after: float, matches, seconds: float = 180):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = [t for t in _sensor_ticks(platform, name, after) if matches(t.skip_reason or "")]
        if found:
            return found[0]
        time.sleep(2)
    raise AssertionError(f"no tick of {name} after {after} matched within {seconds} s: "
                         f"{[t.skip_reason for t in _sensor_ticks(platform, name, after)]}")


def test_check_interval_and_pool_limit_changes_apply_on_the_running_daemon(platform, capsys):
    """The daemon ticks the trigger sensors every 30 s; each checks only when
    operations.check_interval_minutes has passed. Changing it (and max_concurrent_retrainings)
    with `config set` applies at the next tick: no reload, no restart."""
    sensor = "performance_degradation_sensor"
    waiting = _wait_for_tick(platform, sensor, 0.0, lambda reason: reason.startswith("next check at"))
    assert "operations.check_interval_minutes = 30" in waiting.skip_reason
    changed_at = time.time()
    cli_json(capsys, "config", "set", "operations.check_interval_minutes=1", "operations.max_concurrent_retrainings=2")
    with dg.DagsterInstance.from_config(str(platform.home)) as instance:
        assert instance.event_log_storage.get_concurrency_info("retraining").slot_count == 2
    checked = _wait_for_tick(platform, sensor, changed_at, lambda reason: not reason.startswith("next check"))
    assert "automated retraining is off" not in (checked.skip_reason or "")
    after = _wait_for_tick(platform, sensor, checked.timestamp, lambda reason: reason.startswith("next check"))
    assert "operations.check_interval_minutes = 1" in after.skip_reason
    cli_json(capsys, "config", "set", "operations.check_interval_minutes=30", "operations.max_concurrent_retrainings=1")
