"""The scale-out stack on the real local services, once per run of this test package.

PostgreSQL (127.0.0.1:5432) gets two throwaway databases, ``aqi_test_<random>`` for Dagster's
storage and ``aqi_test_<random>_mlflow`` for MLflow tracking and registry, dropped at teardown.
Redis (127.0.0.1:6379) is the Celery broker and result backend on a database of its own. The
instance is ``deploy/dagster.postgres.yaml`` with a 5-second run-monitoring poll. A Celery worker
(``dagster-celery worker start``, queues ``dagster`` and ``retraining``) and the Dagster daemon
(run queue, run monitoring) run as child processes, killed at teardown. Runs are submitted
through GraphQL's launchRun, like the UI and the CLI do. Tests skip with the reason when the
services are unreachable.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
START = date(2024, 1, 1)
DAYS = 40
FAST_SETTINGS = {"training.window_days": "36", "training.validation_days": "5", "training.holdout_days": "5",
                 "training.preset": "fast", "gates.min_within_20": "0.5"}
FINISHED = ("SUCCESS", "FAILURE", "CANCELED")


def _postgres_or_skip():
    try:
        import psycopg2

        conn = psycopg2.connect(PG_ADMIN, connect_timeout=3)
    except Exception as exc:
        pytest.skip(f"PostgreSQL unreachable at 127.0.0.1:5432 ({exc})")
    conn.autocommit = True
    return conn


def _redis_or_skip(db: int):
    try:
        import redis

        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db, socket_connect_timeout=3)
        client.ping()
    except Exception as exc:
        pytest.skip(f"Redis unreachable at {REDIS_HOST}:{REDIS_PORT} ({exc})")
    return client


def closed_port() -> int:
    """A local TCP port nothing listens on."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Stack:
    home: Path
    env: dict
    instance: object
    mlflow_uri: str
    logs: Path
    procs: dict = field(default_factory=dict)
    _workspace: object = None

    # -- processes -------------------------------------------------------------------------
    def start(self, name: str, args: list[str], env: dict | None = None) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")
        proc = subprocess.Popen(args, cwd=REPO, env=env or self.env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs[name] = proc
        return proc

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=30)

    def start_worker(self, name: str = "worker", queues=("dagster", "retraining")) -> subprocess.Popen:
        # one comma-joined -q: dagster-celery turns repeated -q into repeated -Q, and Celery keeps the last
        queue_args = ["-q", ",".join(queues)]
        return self.start(name, [str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app",
                                 "-y", str(REPO / "deploy" / "celery.yaml"), *queue_args, "-n", f"aqi-{name}",
                                 "-l", "INFO", "--", "--concurrency=1"])

    def start_daemon(self) -> subprocess.Popen:
        return self.start("daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")])

    # -- runs ------------------------------------------------------------------------------
    def workspace(self):
        if self._workspace is None:
            from dagster._core.workspace.context import WorkspaceProcessContext
            from dagster._core.workspace.load_target import WorkspaceFileTarget

            self._workspace = WorkspaceProcessContext(self.instance, WorkspaceFileTarget([str(REPO / "workspace.yaml")]))
        return self._workspace

    def launch(self, job: str, run_config: dict | None = None, tags: dict | None = None) -> dict:
        """launchRun through GraphQL (queued by the instance's run coordinator): the answer."""
        from dagster_graphql.client.client_queries import CLIENT_SUBMIT_PIPELINE_RUN_MUTATION
        from dagster_graphql.test.utils import execute_dagster_graphql

        metadata = {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]}
        result = execute_dagster_graphql(
            self.workspace().create_request_context(), CLIENT_SUBMIT_PIPELINE_RUN_MUTATION,
            {"executionParams": {
                "selector": {"repositoryLocationName": "aqi_assets", "repositoryName": "__repository__",
                             "pipelineName": job},
                "runConfigData": run_config or {},
                "executionMetadata": metadata,
            }})
        return result.data["launchPipelineExecution"]

    def submit(self, job: str, run_config: dict | None = None, tags: dict | None = None) -> str:
        """launchRun; the run id."""
        launched = self.launch(job, run_config, tags)
        assert launched["__typename"] == "LaunchRunSuccess", launched
        return launched["run"]["runId"]

    def wait(self, run_id: str, timeout: float, statuses=FINISHED):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.instance.get_run_by_id(run_id)
            if run.status.value in statuses:
                return run
            time.sleep(0.5)
        raise AssertionError(f"run {run_id} still {self.instance.get_run_by_id(run_id).status.value} "
                             f"after {timeout:.0f} s")

    def events(self, run_id: str, *types: str):
        records = self.instance.all_logs(run_id)
        return [r for r in records if not types or (r.dagster_event and r.dagster_event.event_type_value in types)]

    def failure_messages(self, run_id: str) -> str:
        parts = []
        for r in self.events(run_id, "STEP_FAILURE", "PIPELINE_FAILURE", "ENGINE_EVENT", "STEP_UP_FOR_RETRY"):
            parts.append(f"{r.dagster_event.event_type_value} {r.step_key or ''}: {r.dagster_event.message or ''}")
            data = getattr(r.dagster_event, "event_specific_data", None)
            error = getattr(data, "error", None)
            if error is not None:
                parts.append(error.to_string())
        return "\n".join(parts)

    def champion_version(self, model: str = "xgboost") -> str | None:
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        try:
            version = MlflowClient(tracking_uri=self.mlflow_uri, registry_uri=self.mlflow_uri) \
                .get_model_version_by_alias(f"aqi_predictor_{model}", "champion")
        except MlflowException:
            return None
        return str(version.version)


def _instance_yaml(home: Path) -> None:
    config = yaml.safe_load((REPO / "deploy" / "dagster.postgres.yaml").read_text())
    config["run_monitoring"]["poll_interval_seconds"] = 5
    config["run_monitoring"]["start_timeout_seconds"] = 90
    config["run_monitoring"]["free_slots_after_run_end_seconds"] = 5
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))


def _fill_lake(root: Path, instance, source) -> None:
    import dagster as dg

    from aqi_assets.core.data.lake import Lake
    from aqi_assets.definitions import defs
    from aqi_assets.defs.resources import LakeIOManager, LakeResource, MlflowRegistryResource, ObservationSourceResource

    lake = Lake(root)
    for i in range(DAYS):
        day = START + timedelta(days=i)
        lake.write_frame("observations", day.isoformat(), source.read_day(day))
    resources = {"source": ObservationSourceResource(spec=source.spec), "lake": LakeResource(root=str(root)),
                 "io_manager": LakeIOManager(root=str(root)), "mlflow_registry": MlflowRegistryResource(),
                 "mlflow": defs.resources["mlflow"]}
    for selection, run_config in ((["station_graph"], {}),
                                  (["retraining_config"], {"ops": {"retraining_config": {"config": {"set": FAST_SETTINGS}}}})):
        dg.materialize(list(defs.assets), instance=instance, resources=resources, selection=selection,
                       run_config=run_config)


def _stop_schedules_and_sensors(stack: Stack) -> None:
    """Sensors and schedules run by default; the tests trigger runs themselves."""
    repo = stack.workspace().create_request_context().get_code_location("aqi_assets") \
        .get_repository("__repository__")
    for sensor in repo.get_sensors():
        stack.instance.stop_sensor(sensor.get_remote_origin_id(), sensor.selector_id, sensor)
    for schedule in repo.get_schedules():
        stack.instance.stop_schedule(schedule.get_remote_origin_id(), schedule.selector_id, schedule)


@pytest.fixture(scope="package")
def scaleout(tmp_path_factory):
    """The running stack: Postgres storage, MLflow on Postgres, Celery worker on Redis, daemon."""
    admin = _postgres_or_skip()
    redis_db = 8 + uuid.uuid4().int % 8
    redis_client = _redis_or_skip(redis_db)
    name = f"aqi_test_{uuid.uuid4().hex[:10]}"
    databases = [name, f"{name}_mlflow"]
    with admin.cursor() as cur:
        for db in databases:
            cur.execute(f'CREATE DATABASE "{db}"')
    root = tmp_path_factory.mktemp("scaleout")
    home, lake_dir, logs = root / "dagster_home", root / "lake", root / "logs"
    for d in (home, lake_dir, logs):
        d.mkdir()
    _instance_yaml(home)
    from aqi_assets.core.data.sources.simulated import SimulatedSource

    source = SimulatedSource(seed=7, n_stations=6, start=START, end=START + timedelta(days=DAYS - 1))
    broker = f"redis://{REDIS_HOST}:{REDIS_PORT}/{redis_db}"
    mlflow_uri = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}_mlflow"
    settings = {
        "DAGSTER_HOME": str(home),
        "AQI_PG_URL": f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}",
        "AQI_SOURCE": source.spec,
        "AQI_LAKE_DIR": str(lake_dir),
        "MLFLOW_TRACKING_URI": mlflow_uri,
        "AQI_MLFLOW_ARTIFACTS": str(root / "mlflow-artifacts"),
        "AQI_MLFLOW_EXPERIMENT": "scaleout_tests",
        "AQI_EXECUTOR": "celery",
        "AQI_CELERY_BROKER": broker,
        "AQI_CELERY_BACKEND": broker,
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
        "PYTHONUNBUFFERED": "1",
    }
    env = {**os.environ, **settings, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    saved = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)  # the test process' instance, workspace and code server use the same
    stack = None
    try:
        from dagster import DagsterInstance
        from mlflow.tracking import MlflowClient

        instance = DagsterInstance.from_config(str(home))
        stack = Stack(home=home, env=env, instance=instance, mlflow_uri=mlflow_uri, logs=logs)
        MlflowClient(tracking_uri=mlflow_uri).search_experiments()  # creates MLflow's schema once
        _fill_lake(lake_dir, instance, source)
        _stop_schedules_and_sensors(stack)
        stack.start_worker()
        stack.start_daemon()
        yield stack
    finally:
        if stack is not None:
            for proc in list(stack.procs):
                stack.stop(proc)
            if stack._workspace is not None:
                stack._workspace.__exit__(None, None, None)
            stack.instance.dispose()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        redis_client.flushdb()
        with admin.cursor() as cur:
            for db in databases:
                cur.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        admin.close()
