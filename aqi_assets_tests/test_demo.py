"""``aqi-retrain demo`` end to end, as ``make demo`` runs it: a real process on a persistent instance."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

ROOT = Path(__file__).resolve().parents[1]
#: A small city whose station S0002 is recalibrated on the 5th replayed day.
SOURCE = "simulated:seed=3,stations=6,start=2024-04-01,scenario=sensor_recalibration@2024-05-03@S0002"


def demo(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DAGSTER_HOME": str(home), "AQI_SOURCE": SOURCE}
    for key in ("AQI_LAKE_DIR", "MLFLOW_TRACKING_URI", "AQI_MLFLOW_ARTIFACTS"):
        env.pop(key, None)  # the demo keeps everything under its Dagster home
    return subprocess.run([sys.executable, "-m", "aqi_assets.cli.main", "demo", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=900)


def figure(out: str, label: str) -> int:
    return int(re.search(rf"^{label}\s+(\d+)", out, re.M).group(1))


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("demo_home")
    shutil.copy(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    return home


def test_demo_replays_days_retrains_on_drift_and_continues(home):
    first = demo(home, "--days", "8")
    assert first.returncode == 0, first.stderr[-3000:]
    out = first.stdout
    assert "days replayed                 8 (2024-04-29..2024-05-06)" in out
    assert "drift retraining" in out and "triggers fired" in out
    assert figure(out, "promotions") >= 3 and figure(out, "gate decisions") >= 4
    with dg.DagsterInstance.from_config(str(home)) as instance:
        drift_runs = instance.get_runs(filters=dg.RunsFilter(tags={"aqi/trigger_type": "drift"}))
        assert {r.job_name for r in drift_runs} == {"retrain_xgboost", "retrain_lstm", "retrain_gnn"}
        assert all(r.tags["aqi/retraining"] == "true" and "S0002" in r.tags["aqi/reason"] for r in drift_runs)
        assert {r.tags.get("dagster/sensor_name") for r in drift_runs} == {"data_drift_sensor"}
        # the weekly report, through its schedule at Monday 06:00 (2024-05-06)
        report = instance.get_latest_materialization_event(dg.AssetKey("retraining_report"))
        assert report is not None and "live RMSE" in report.asset_materialization.metadata["report"].value
        report_run = instance.get_run_by_id(report.run_id)
        assert report_run.tags["dagster/schedule_name"] == "weekly_retraining_report"
        assert report_run.tags["aqi/scheduled_for"] == "2024-05-06T06:00"
        for model in ("xgboost", "lstm", "gnn"):
            trained = instance.get_latest_materialization_event(dg.AssetKey(f"{model}_model"))
            links = trained.asset_materialization.metadata
            assert links["mlflow_run"].value.startswith("http://127.0.0.1:5000/#/experiments/")
            promotions = instance.fetch_materializations(dg.AssetKey(f"{model}_promotion"), limit=100).records
            history = promotions[0].asset_materialization.metadata["history"].value
            assert len(history.records) == len(promotions)  # one row per change of the serving version
    assert "weekly reports built          1 (2024-05-06 06:00)" in out
    assert (home / "mlflow" / "mlflow.db").exists()

    second = demo(home, "--days", "2")  # a new `make demo` continues where the last one stopped
    assert second.returncode == 0, second.stderr[-3000:]
    assert "days replayed                 2 (2024-05-07..2024-05-08)" in second.stdout
    assert "drift retraining" not in second.stdout  # the same drift does not fire twice
