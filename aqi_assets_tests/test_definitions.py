"""The code location as Dagster loads it: validation passes and every part the platform promises is there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from aqi_assets.definitions import defs

ROOT = Path(__file__).resolve().parents[1]


def test_dagster_definitions_validate_passes():
    dagster = Path(sys.executable).with_name("dagster")
    result = subprocess.run([str(dagster), "definitions", "validate", "-w", "workspace.yaml"], cwd=ROOT,
                            env=os.environ.copy(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "All code locations passed validation" in result.stderr + result.stdout


def test_sensors_schedules_and_jobs_are_defined_with_their_defaults():
    sensors = {s.name: s for s in defs.sensors}
    for name in ("performance_degradation_sensor", "data_drift_sensor", "scheduled_retraining_sensor",
                 "retraining_failure_alert"):
        assert sensors[name].default_status.value == "RUNNING", name
    # they tick every 30 s and check when operations.check_interval_minutes of the config in force has passed
    assert sensors["data_drift_sensor"].minimum_interval_seconds == 30
    assert sensors["observations_arrival_sensor"].default_status.value == "STOPPED"
    schedules = {s.name: s.cron_schedule for s in defs.schedules}
    # both read their cron (schedule.adapt_cron, operations.report_cron) from the config in force on every tick
    assert schedules == {"adapt_retraining_schedule": "*/5 * * * *", "weekly_retraining_report": "*/5 * * * *"}
    jobs = {j.name for j in defs.jobs}
    assert {"manual_retraining", "ingest_day", "retrain_xgboost", "retrain_lstm", "retrain_gnn",
            "rollback_xgboost", "rollback_lstm", "rollback_gnn", "retraining_report_job"} <= jobs


def _diagram_edges(readme: str) -> set[tuple[str, str]]:
    """Solid edges (``a --> b``) between assets in the README's mermaid diagram, as asset names."""
    import re

    block = readme.split("```mermaid", 1)[1].split("```", 1)[0]
    names: dict[str, str] = {}
    for node, label in re.findall(r"(\w+)\[\(?([^\]\)<]+)", block):
        names[node] = label.strip()
    edges = set()
    for line in block.splitlines():
        if "-->" not in line:
            continue
        hops = [[re.match(r"\s*(\w+)", part).group(1) for part in hop.split("&")] for hop in line.split("-->")]
        for sources, targets in zip(hops, hops[1:]):
            edges |= {(names.get(a, a), names.get(b, b)) for a in sources for b in targets}
    return edges


def test_readme_diagram_draws_the_real_asset_graph():
    graph = defs.resolve_asset_graph()
    assets = {key.to_user_string() for key in graph.get_all_asset_keys()}
    real = {(parent.to_user_string(), key.to_user_string())
            for key in graph.get_all_asset_keys() for parent in graph.get(key).parent_keys}
    drawn = {(a, b) for a, b in _diagram_edges((ROOT / "README.md").read_text()) if a in assets and b in assets}
    assert drawn == real, f"missing from the diagram: {real - drawn}; drawn but not in the graph: {drawn - real}"
    assert ("model_performance", "retraining_schedule") in real and ("model_performance", "retraining_report") in real
