"""A misconfigured source never stops the code location: it loads, and the error is reported once, clearly."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from aqi_assets.core.configuration.store import config_in_force, next_record, save_record
from aqi_assets.core.data.lake import Lake
from aqi_assets.defs.monitoring.health import platform_health_sensor
from aqi_assets.defs.resources import LakeResource, ObservationSourceResource

ROOT = Path(__file__).resolve().parents[2]


def broken_sources(tmp_path) -> dict[str, str]:
    empty = tmp_path / "empty"
    empty.mkdir()
    bad_unit = tmp_path / "bad_unit"
    bad_unit.mkdir()
    (bad_unit / "obs.csv").write_text("timestamp,station,no2[furlongs]\n2024-01-01 00:00,A,3\n")
    return {"missing directory": f"csv:{tmp_path / 'nowhere'}", "no files": f"prsa:{empty}",
            "unknown unit": f"csv:{bad_unit}", "unknown kind": "ftp://example.org/data"}


@pytest.mark.parametrize("case", ["missing directory", "unknown unit", "unknown kind"])
def test_the_code_location_loads_whatever_aqi_source_holds(tmp_path, case):
    env = {**os.environ, "AQI_SOURCE": broken_sources(tmp_path)[case]}
    code = ("from aqi_assets.definitions import defs; from aqi_assets.defs.partitions import SOURCE_ERROR;"
            "print(len(list(defs.assets)), SOURCE_ERROR)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "SourceError" in result.stdout and result.stderr.count("Traceback") == 0


@pytest.mark.parametrize("case", ["missing directory", "no files", "unknown unit", "unknown kind"])
def test_health_sensor_names_the_source_problem_and_alerts_once(tmp_path, webhook, case):
    url, received = webhook
    lake = Lake(tmp_path / "lake")
    save_record(lake, next_record(lake, {"operations.alert_webhook_url": url}))
    resources = {"lake": LakeResource(root=str(lake.root)),
                 "source": ObservationSourceResource(spec=broken_sources(tmp_path)[case])}
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources=resources)
        first = platform_health_sensor(context)
        again = platform_health_sensor(dg.build_sensor_context(instance=instance, resources=resources,
                                                               cursor=context.cursor))
    assert isinstance(first, dg.SkipReason) and first.skip_message.startswith("1 PROBLEM(S): source: cannot read")
    assert again.skip_message == first.skip_message
    assert len(received) == 1  # alerted once, not on every tick
    assert received[0]["blocks"][0]["text"]["text"].endswith("platform problem: source")
    assert "cannot read the source" in received[0]["text"]


def test_health_sensor_describes_a_readable_network(tmp_path):
    spec = "simulated:seed=1,stations=3,start=2024-01-01,end=2024-01-31,columns=pm25+humidity"
    resources = {"lake": LakeResource(root=str(tmp_path)), "source": ObservationSourceResource(spec=spec)}
    with dg.instance_for_test() as instance:
        result = platform_health_sensor(dg.build_sensor_context(instance=instance, resources=resources))
    assert result.skip_message.startswith("healthy: source: simulated:seed=1")
    assert "(3 stations, 2024-01-01..2024-01-31); measures pm25, humidity" in result.skip_message
    assert "config: retraining_config the built-in defaults (no change recorded) in force; automation: automated " \
        "retraining on (drift, performance, schedule); daemon: no daemon heartbeat recorded (checked outside the " \
        "daemon)" in result.skip_message


def test_health_shows_automated_retraining_switched_off(tmp_path, monkeypatch):
    monkeypatch.setenv("AQI_AUTOMATED_RETRAINING_ENABLED", "false")
    resources = {"lake": LakeResource(root=str(tmp_path)),
                 "source": ObservationSourceResource(spec="simulated:stations=3,start=2024-01-01,end=2024-01-31")}
    with dg.instance_for_test() as instance:
        result = platform_health_sensor(dg.build_sensor_context(instance=instance, resources=resources))
    assert "automation: automated retraining is off (AQI_AUTOMATED_RETRAINING_ENABLED=false); manual retraining " \
        "still works" in result.skip_message


def test_a_stored_config_that_no_longer_validates_is_passed_over_said_and_alerted(tmp_path, webhook):
    url, received = webhook
    lake = Lake(tmp_path / "lake")
    save_record(lake, next_record(lake, {"operations.alert_webhook_url": url, "gates.max_rmse": "22"}))
    broken = next_record(lake, {"gates.max_rmse": "21"})
    broken["config"]["operations"]["report_cron"] = "every monday"  # edited by hand
    save_record(lake, broken)
    in_force = config_in_force(lake)
    assert (in_force.version, in_force.config.gates.max_rmse) == (1, 22.0)
    assert "retraining_config v2 is invalid (operations.report_cron: 'every monday' is not a cron" in in_force.problem
    assert in_force.problem.endswith("running on v1, the last valid one")
    resources = {"lake": LakeResource(root=str(lake.root)),
                 "source": ObservationSourceResource(spec="simulated:stations=3,start=2024-01-01,end=2024-01-31")}
    with dg.instance_for_test() as instance:
        result = platform_health_sensor(dg.build_sensor_context(instance=instance, resources=resources))
    assert result.skip_message.startswith("1 PROBLEM(S): config: retraining_config v2 is invalid")
    assert len(received) == 1 and "running on v1" in received[0]["text"]
    # the code location still loads on it
    env = {**os.environ, "AQI_LAKE_DIR": str(lake.root)}
    loaded = subprocess.run([sys.executable, "-c", "from aqi_assets.definitions import defs; print('ok')"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=300)
    assert loaded.returncode == 0 and "ok" in loaded.stdout, loaded.stderr[-2000:]


def test_a_silent_daemon_is_a_problem_and_a_beating_one_reports_its_uptime(tmp_path, webhook):
    import time

    from dagster._daemon.types import DaemonHeartbeat

    url, received = webhook
    lake = Lake(tmp_path / "lake")
    save_record(lake, next_record(lake, {"operations.alert_webhook_url": url}))
    resources = {"lake": LakeResource(root=str(lake.root)),
                 "source": ObservationSourceResource(spec="simulated:stations=3,start=2024-01-01,end=2024-01-31")}
    now = time.time()
    with dg.instance_for_test() as instance:
        for kind, age in (("SENSOR", 5), ("SCHEDULER", 5), ("QUEUED_RUN_COORDINATOR", 600)):
            instance.add_daemon_heartbeat(DaemonHeartbeat(now - age, kind, "daemon-1", None))
        context = dg.build_sensor_context(instance=instance, resources=resources)
        result = platform_health_sensor(context)
        assert re.match(r"1 PROBLEM\(S\): daemon: 1 of 3 daemons not healthy: QUEUED_RUN_COORDINATOR silent for "
                        r"6\d\d s", result.skip_message), result.skip_message  # 600 s and the test's own time
        assert len(received) == 1 and received[0]["blocks"][0]["text"]["text"].endswith("platform problem: daemon")
        instance.add_daemon_heartbeat(DaemonHeartbeat(time.time(), "QUEUED_RUN_COORDINATOR", "daemon-1", None))
        healthy = platform_health_sensor(dg.build_sensor_context(instance=instance, resources=resources,
                                                                 cursor=context.cursor))
    assert healthy.skip_message.startswith("healthy:") and "daemon: 3 daemons healthy, up for 0 min" in \
        healthy.skip_message
    record = lake.read_json("platform_health")
    assert record["ok"] is True and record["daemon_up_since"] <= time.time()
