"""Benchmark: one retraining of all three models through the real Dagster path, timed end to end.

A fresh instance in a temporary ``DAGSTER_HOME`` (the shipped ``deploy/dagster.yaml``: queued
runs, the ``retraining`` pool, run monitoring), the configured source (the Beijing data by
default) and ``--days`` ingested days (stored in the lake before the clock starts: ingestion
is not timed), the station graph and a training window of all of them. Then the clock starts:
``retrain_xgboost``, ``retrain_lstm`` and ``retrain_gnn`` are launched through GraphQL's
launchRun as the sensors' requests are, the daemon dequeues them, run workers train, log to
MLflow (SQLite), register, judge the four gates and promote; the clock stops when the last run
ends. Writes ``bench/results/retrain.json``::

    {"window_days", "stations", "wall_seconds", "load_avg_before", "load_avg_after",
     "models": {"xgboost": {"seconds", "rmse", "within_20", "outcome"}, "lstm": {...}, "gnn": {...}}}

``outcome`` is ``promoted`` or ``kept by <gate>``; ``seconds`` is the model's training time.

``--manual MODEL`` times what a person's request costs instead: the demo's embedded source, its
28-day warm-up window (the source's first days) and settings (``cli.demo.DEMO_SETTINGS``: the ``fast`` preset), and
``manual_retraining`` runs for ``MODEL``
launched through GraphQL with the Launchpad's config; ``launch_to_promotion_seconds`` runs from
the launch to the promotion's materialization, and ``steps`` lists the steps the run executed
(only that model's). Writes ``bench/results/manual_retrain.json``.

    python -m bench.bench_retrain                         # Beijing, 365 days, full presets
    python -m bench.bench_retrain --manual gnn                # one model, as a person asks for it
    python -m bench.bench_retrain --source simulated:seed=7,stations=6,start=2024-01-01,end=2024-03-31 \\
        --days 40 --preset fast --output /tmp/retrain.json   # a quick check of the path
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from bench.common import RESULTS_DIR, machine_info

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DEFAULT_SOURCE = f"prsa:{REPO.parent / 'shared' / 'data' / 'beijing'}"
MODELS: tuple[str, ...] = ("xgboost", "lstm", "gnn")
GOAL_SECONDS = 300.0
MANUAL_GOAL_SECONDS = 30.0
#: The demo's embedded source (the Makefile's ``AQI_SOURCE``) and warm-up window.
DEMO_SOURCE = "simulated:start=2024-04-01,scenario=sensor_recalibration@2024-05-13@S0005"
DEMO_WARMUP_DAYS = 28
FINISHED = ("SUCCESS", "FAILURE", "CANCELED")


def _settings(days: int, preset: str) -> dict[str, str]:
    holdout = max(3, min(30, days // 12))
    return {"training.window_days": str(days), "training.validation_days": str(holdout),
            "training.holdout_days": str(holdout), "training.preset": preset}


def prepare(home: Path, source_spec: str, days: int, settings: dict[str, str],
            from_start: bool = False) -> tuple[object, int]:
    """Store ``days`` observed days (the latest of the source, or with ``from_start`` its first, as
    the demo's warm-up does), the graph and the config (``settings``: dotted edits); the instance."""
    import dagster as dg

    from aqi_assets.core.data.lake import Lake
    from aqi_assets.core.data.sources import source_from_spec
    from aqi_assets.definitions import defs
    from aqi_assets.defs.resources import LakeIOManager, LakeResource, MlflowRegistryResource, ObservationSourceResource

    source = source_from_spec(source_spec)
    lake = Lake(os.environ["AQI_LAKE_DIR"])
    last = source.last_day()
    if last is None:
        raise SystemExit(f"{source_spec}: cannot tell which days the source holds")
    start = last - timedelta(days=days - 1)
    if from_start:
        start = source.first_day()
        last = start + timedelta(days=days - 1)
    frame = source.read_range(start, last)
    for day, part in frame.groupby(frame["timestamp"].dt.date):
        lake.write_frame("observations", day.isoformat(), part.reset_index(drop=True))
    instance = dg.DagsterInstance.from_config(str(home))
    resources = {"source": ObservationSourceResource(spec=source_spec), "lake": LakeResource(),
                 "io_manager": LakeIOManager(), "mlflow_registry": MlflowRegistryResource(),
                 "mlflow": defs.resources["mlflow"]}
    for selection, run_config in ((["station_graph"], {}),
                                  (["retraining_config"],
                                   {"ops": {"retraining_config": {"config": {"set": settings}}}})):
        dg.materialize(list(defs.assets), instance=instance, resources=resources, selection=selection,
                       run_config=run_config)
    return instance, int(frame["station"].nunique())


def _workspace(instance):
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    return WorkspaceProcessContext(instance, WorkspaceFileTarget([str(REPO / "workspace.yaml")]))


def _stop_sensors_and_schedules(instance, workspace) -> None:
    """They run by default; this benchmark requests its runs itself."""
    repo = workspace.create_request_context().get_code_location("aqi_assets").get_repository("__repository__")
    for sensor in repo.get_sensors():
        instance.stop_sensor(sensor.get_remote_origin_id(), sensor.selector_id, sensor)
    for schedule in repo.get_schedules():
        instance.stop_schedule(schedule.get_remote_origin_id(), schedule.selector_id, schedule)


def launch(workspace, job: str, tags: dict[str, str], run_config: dict | None = None) -> str:
    """launchRun through GraphQL (queued by the instance's run coordinator); the run id."""
    from dagster_graphql.client.client_queries import CLIENT_SUBMIT_PIPELINE_RUN_MUTATION
    from dagster_graphql.test.utils import execute_dagster_graphql

    result = execute_dagster_graphql(
        workspace.create_request_context(), CLIENT_SUBMIT_PIPELINE_RUN_MUTATION,
        {"executionParams": {
            "selector": {"repositoryLocationName": "aqi_assets", "repositoryName": "__repository__",
                         "pipelineName": job},
            "runConfigData": run_config or {},
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
        }})
    answer = result.data["launchPipelineExecution"]
    if answer["__typename"] != "LaunchRunSuccess":
        raise RuntimeError(f"launching {job}: {answer}")
    return answer["run"]["runId"]


def outcome_of(instance, run_id: str, model: str) -> dict:
    """Training seconds, holdout RMSE and within-20 %, and promoted / kept by <gate>, from the run's events."""
    import dagster as dg

    run = instance.get_run_by_id(run_id)
    out: dict = {"run_status": run.status.value}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or event.event_type_value != "ASSET_MATERIALIZATION":
            continue
        materialization = event.event_specific_data.materialization
        meta = materialization.metadata
        if materialization.asset_key == dg.AssetKey(f"{model}_model"):
            out.update({"seconds": round(float(meta["train_seconds"].value), 1),
                        "rmse": round(float(meta["holdout_rmse"].value), 3),
                        "within_20": round(float(meta["holdout_within_20"].value), 4)})
        if materialization.asset_key == dg.AssetKey(f"{model}_promotion"):
            out["outcome"] = "promoted"
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is not None and event.event_type_value in ("STEP_FAILURE", "RUN_FAILURE"):
            error = getattr(event.event_specific_data, "error", None)
            out.setdefault("error", f"{event.step_key or 'run'}: "
                                    f"{error.message.strip() if error is not None else event.message}")
    if "outcome" not in out:
        gate = run.tags.get("aqi/gate")
        out["outcome"] = f"kept by {gate}" if gate else f"run {run.status.value.lower()}"
    return out


def executed_steps(instance, run_id: str) -> list[str]:
    """The step keys a run started, in order."""
    return [r.dagster_event.step_key for r in instance.all_logs(run_id)
            if r.dagster_event is not None and r.dagster_event.event_type_value == "STEP_START"]


def promoted_at(instance, model: str) -> float | None:
    """Timestamp of the latest materialization of ``<model>_promotion`` (None if never)."""
    import dagster as dg

    event = instance.get_latest_materialization_event(dg.AssetKey(f"{model}_promotion"))
    return None if event is None else event.timestamp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=DEFAULT_SOURCE)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--preset", default="full", choices=("full", "fast"))
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--output")
    parser.add_argument("--models", default=",".join(MODELS), help="the models retrained (default: all three)")
    parser.add_argument("--manual", choices=MODELS, help="time one manual_retraining run of this model instead")
    args = parser.parse_args()
    if args.manual:
        args.source = args.source if args.source != DEFAULT_SOURCE else DEMO_SOURCE
        args.days = args.days if args.days != 365 else DEMO_WARMUP_DAYS
        args.preset = "fast"
    args.output = args.output or str(RESULTS_DIR / ("manual_retrain.json" if args.manual else "retrain.json"))

    root = Path(tempfile.mkdtemp(prefix="bench-retrain-"))
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    settings = {"DAGSTER_HOME": str(home), "AQI_SOURCE": args.source, "AQI_LAKE_DIR": str(root / "lake"),
                "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
                "AQI_MLFLOW_ARTIFACTS": str(root / "mlflow-artifacts"), "PYTHONUNBUFFERED": "1"}
    os.environ.update(settings)  # this process, the daemon and the run workers share them
    daemon, workspace = None, None
    try:
        print(f"== storing {args.days} days of {args.source} (not timed)", flush=True)
        if args.manual:
            from aqi_assets.cli.demo import DEMO_SETTINGS

            settings = DEMO_SETTINGS
        else:
            settings = _settings(args.days, args.preset)
        instance, stations = prepare(home, args.source, args.days, settings, from_start=bool(args.manual))
        workspace = _workspace(instance)
        _stop_sensors_and_schedules(instance, workspace)
        log = open(root / "daemon.log", "w")
        daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")],
                                  cwd=REPO, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT)
        if args.manual:
            result = time_manual(instance, workspace, args.manual, args.days, stations, args.source, args.timeout)
            Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
            print(json.dumps(result, indent=2))
            return
        load_before = os.getloadavg()
        models = [m.strip() for m in args.models.split(",") if m.strip()]
        print(f"== retraining {', '.join(models)} ({args.preset} preset, {args.days}-day window, "
              f"{stations} stations); load {load_before[0]:.2f}", flush=True)
        started = time.perf_counter()
        tags = {"aqi/trigger_type": "schedule", "aqi/severity": "low", "aqi/reason": "retraining benchmark"}
        runs = {model: launch(workspace, f"retrain_{model}", tags) for model in models}
        pending = dict(runs)
        while pending:
            if time.perf_counter() - started > args.timeout:
                raise SystemExit(f"runs {sorted(pending)} not finished after {args.timeout:.0f} s")
            for model, run_id in list(pending.items()):
                if instance.get_run_by_id(run_id).status.value in FINISHED:
                    print(f"   {model} run ended after {time.perf_counter() - started:.0f} s", flush=True)
                    del pending[model]
            time.sleep(1.0)
        wall = time.perf_counter() - started
        load_after = os.getloadavg()
        result = {
            "window_days": args.days, "stations": stations, "wall_seconds": round(wall, 1),
            "goal_seconds": GOAL_SECONDS, "source": args.source, "preset": args.preset,
            "models": {model: outcome_of(instance, run_id, model) for model, run_id in runs.items()},
            "load_avg_before": [round(x, 2) for x in load_before],
            "load_avg_after": [round(x, 2) for x in load_after],
            "machine": machine_info(),
            "reproduce": "make bench-retrain (= .venv/bin/python -m bench.bench_retrain)",
        }
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
    finally:
        if workspace is not None:  # stops the code server it started
            workspace.__exit__(None, None, None)
        if daemon is not None:
            daemon.terminate()
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                daemon.kill()
        shutil.rmtree(root, ignore_errors=True)


def time_manual(instance, workspace, model: str, days: int, stations: int, source: str, timeout: float) -> dict:
    """Two manual_retraining runs of ``model``, launched as the Launchpad does: the first on the
    fresh instance (no champion yet), the second against the champion the first promoted."""
    load_before = os.getloadavg()
    runs = {}
    for label in ("first", "with_champion"):
        before = promoted_at(instance, model)
        launched = time.time()
        run_id = launch(workspace, "manual_retraining", {},
                        {"model": model, "reason": "manual retraining benchmark", "severity": "medium"})
        while instance.get_run_by_id(run_id).status.value not in FINISHED:
            if time.time() - launched > timeout:
                raise SystemExit(f"the manual run of {model} did not finish after {timeout:.0f} s")
            time.sleep(0.5)
        ended = time.time()
        promoted = promoted_at(instance, model)
        runs[label] = {
            "launch_to_promotion_seconds": None if promoted in (None, before) else round(promoted - launched, 1),
            "launch_to_run_end_seconds": round(ended - launched, 1),
            "steps": executed_steps(instance, run_id), **outcome_of(instance, run_id, model)}
        print(f"   {label}: {runs[label]}", flush=True)
    return {
        "model": model, "window_days": days, "stations": stations, "source": source, "preset": "fast",
        "goal_seconds": MANUAL_GOAL_SECONDS, "runs": runs,
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in os.getloadavg()], "machine": machine_info(),
        "reproduce": f"make bench-retrain BENCH_ARGS='--manual {model}'",
    }


if __name__ == "__main__":
    main()
