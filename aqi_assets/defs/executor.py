"""The retraining jobs' executor, chosen by configuration: in-process/multiprocess, or Celery workers on Redis.

``AQI_EXECUTOR`` unset (or ``in_process``): every step of a run in its run worker's process. A
retraining is a few short steps in sequence (dataset, the model, its gates and promotion), and
a process per step cost more than the steps: a manual one-model retraining with the fast
preset took 170-190 s from launch to decision with a process per step and 17-19 s in one
process, on the same busy 2-core machine (``make bench-retrain BENCH_ARGS='--manual xgboost'``).
``multiprocess``: Dagster's default executor, a process per step (isolation, parallel steps).
``AQI_EXECUTOR=celery``: each step is sent to dagster-celery workers
over the broker ``AQI_CELERY_BROKER`` (results on ``AQI_CELERY_BACKEND``, default: the broker);
model-training steps carry the op tag ``dagster-celery/queue`` = ``AQI_CELERY_MODEL_QUEUE``
(``retraining``) so they run on their own workers, everything else on ``dagster``. Workers start
with ``dagster-celery worker start -A dagster_celery.app -y deploy/celery.yaml -q <queue>``.

Before the first step is sent, the Celery executor checks that the broker answers: a broker
that is down fails the run at once with a message naming the broker, before any step has run
(nothing is trained, registered or promoted).
"""

from __future__ import annotations

import os

import dagster as dg
from dagster._core.execution.retries import RetryMode, get_retries_config

EXECUTOR_ENV = "AQI_EXECUTOR"
BROKER_ENV = "AQI_CELERY_BROKER"
BACKEND_ENV = "AQI_CELERY_BACKEND"
MODEL_QUEUE_ENV = "AQI_CELERY_MODEL_QUEUE"
DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
DEFAULT_QUEUE = "dagster"  # dagster-celery's default queue: dataset, checks, promotion
DEFAULT_MODEL_QUEUE = "retraining"
CELERY_QUEUE_TAG = "dagster-celery/queue"
BROKER_CHECK_TIMEOUT_SECONDS = 5.0


def executor_kind() -> str:
    """``in_process`` (the default), ``multiprocess`` or ``celery``, from ``AQI_EXECUTOR``."""
    kind = (os.environ.get(EXECUTOR_ENV) or "in_process").strip().lower()
    if kind not in ("celery", "multiprocess", "in_process"):
        raise ValueError(f"{EXECUTOR_ENV}={kind!r}: use in_process, multiprocess or celery")
    return kind


def model_queue() -> str:
    return os.environ.get(MODEL_QUEUE_ENV) or DEFAULT_MODEL_QUEUE


def model_step_tags() -> dict[str, str]:
    """Op tags of a model-training step: its Celery queue (ignored by the other executors)."""
    return {CELERY_QUEUE_TAG: model_queue()}


def broker_url() -> str:
    return os.environ.get(BROKER_ENV) or DEFAULT_BROKER


def backend_url() -> str:
    return os.environ.get(BACKEND_ENV) or broker_url()


def _redacted(url: str) -> str:
    """The broker URL without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url


class BrokerUnavailableError(RuntimeError):
    """The Celery broker did not answer before the run sent its first step."""


def check_broker(url: str, timeout: float = BROKER_CHECK_TIMEOUT_SECONDS) -> None:
    """Raise :class:`BrokerUnavailableError` naming the broker when it does not answer."""
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=timeout) as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
    except Exception as exc:  # kombu raises OperationalError and friends
        raise BrokerUnavailableError(
            f"Celery broker {_redacted(url)} ({BROKER_ENV}) is unreachable: {exc}. No step was sent; "
            "nothing was trained, registered or promoted. Start the broker (Redis) or fix "
            f"{BROKER_ENV}, then launch the run again."
        ) from exc


def _celery_executor_class():
    from dagster_celery.executor import CeleryExecutor

    class CheckedCeleryExecutor(CeleryExecutor):
        """dagster-celery's executor: checks the broker first, frees the run's pool slots last.

        A step whose Celery task raises before the step itself reports (a resource that cannot
        start, a worker process lost) never reports its end, so the ``retraining`` pool slot it
        claimed would stay taken and block every later training step. When the run's execution
        loop ends, all its steps are over: any slot still held by the run is released.
        """

        def execute(self, plan_context, execution_plan):
            check_broker(self.broker)
            try:
                yield from super().execute(plan_context, execution_plan)
            finally:
                plan_context.instance.event_log_storage.free_concurrency_slots_for_run(
                    plan_context.dagster_run.run_id)

    return CheckedCeleryExecutor


@dg.executor(
    name="aqi_celery_executor",
    config_schema={
        "retries": get_retries_config(),
        "broker": dg.Field(dg.StringSource, is_required=False,
                           description=f"Celery broker URL; default ${BROKER_ENV}, else {DEFAULT_BROKER}"),
        "backend": dg.Field(dg.StringSource, is_required=False,
                            description=f"Celery result backend; default ${BACKEND_ENV}, else the broker"),
    },
    requirements=dg.multiple_process_executor_requirements(),
)
def aqi_celery_executor(init_context: dg.InitExecutorContext):
    """dagster-celery on the broker of ``AQI_CELERY_BROKER`` (read when the run starts), or the run's config."""
    config = init_context.executor_config
    broker = config.get("broker") or broker_url()
    return _celery_executor_class()(
        broker=broker,
        backend=config.get("backend") or (backend_url() if not config.get("broker") else broker),
        retries=RetryMode.from_config(init_context.executor_config["retries"]),
    )


def retraining_executor() -> dg.ExecutorDefinition:
    """The executor of the retraining jobs, by ``AQI_EXECUTOR`` (read when the code loads)."""
    if executor_kind() == "celery":
        return aqi_celery_executor
    if executor_kind() == "in_process":
        return dg.in_process_executor
    return dg.multi_or_in_process_executor
