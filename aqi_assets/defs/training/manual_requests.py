"""Manual retraining requests: one queued run per identical request, duplicates answered with it.

A manual request (model, severity, reason) is launched with a run id derived from the request
and from how many runs of that same request have already left the queue. Twenty identical
requests sent at once therefore all name the same run id: the run storage accepts the first
(its primary key is the run id, in SQLite and PostgreSQL alike) and refuses the others, which
the caller reports as deduplicated, naming the queued run. Once that run has started, the
next identical request gets a new id and a new run (it may see newer data). Requests that
differ (another model, reason or severity) are separate runs, serialized by the run queue's
``aqi/retraining`` limit.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field

import dagster as dg

from aqi_assets.defs.run_tags import REASON_TAG, SEVERITY_TAG, TRIGGER_TYPE_TAG

REQUEST_KEY_TAG = "aqi/request_key"
_NAMESPACE = uuid.UUID("0b3f3f8e-9a55-4f55-9a63-5b0d1a4a7c21")
_WAITING = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED]


@dataclass
class ManualRequest:
    """What to launch (job ``manual_retraining`` with this run id, config and tags)."""

    model: str
    reason: str
    severity: str
    run_id: str
    key: str
    run_config: dict = field(default_factory=dict)
    tags: dict = field(default_factory=dict)

    def deduplicated_reason(self) -> str:
        return (f"an identical request ({self.model}, {self.severity}: {self.reason}) is already queued as run "
                f"{self.run_id}; it will retrain {self.model} on the same data")


def request_key(model: str, reason: str, severity: str) -> str:
    return hashlib.sha256(f"{model}\x1f{severity}\x1f{reason}".encode()).hexdigest()[:16]


def manual_request(instance: dg.DagsterInstance, model: str, reason: str, severity: str = "medium") -> ManualRequest:
    """The run to launch for this request; identical requests waiting in the queue share its id."""
    key = request_key(model, reason, severity)
    runs = instance.get_run_records(dg.RunsFilter(tags={REQUEST_KEY_TAG: key}))
    departed = sum(1 for r in runs if r.dagster_run.status not in _WAITING)
    run_id = str(uuid.uuid5(_NAMESPACE, f"{key}:{departed}"))
    return ManualRequest(
        model=model, reason=reason, severity=severity, run_id=run_id, key=key,
        run_config={"model": model, "reason": reason, "severity": severity},
        tags={REQUEST_KEY_TAG: key, TRIGGER_TYPE_TAG: "manual", SEVERITY_TAG: severity, REASON_TAG: reason},
    )


@dataclass
class RequestOutcome:
    """``accepted`` (a new queued run) or ``deduplicated`` (joined the queued run); never lost."""

    outcome: str
    run_id: str
    reason: str = ""


def launch_manual_request(workspace, request: ManualRequest, location: str = "aqi_assets",
                          job: str = "manual_retraining") -> RequestOutcome:
    """Create and queue the request's run through the workspace, as GraphQL's launchRun does.

    ``workspace`` is a Dagster workspace request context (the webserver's or the daemon's).
    An identical request already waiting answers ``deduplicated`` with its run id.
    """
    from dagster._core.errors import DagsterRunAlreadyExists
    from dagster_graphql.implementation.execution.run_lifecycle import create_valid_pipeline_run
    from dagster_graphql.implementation.utils import ExecutionMetadata, ExecutionParams

    repository = workspace.get_code_location(location).get_repository("__repository__")
    remote_job = repository.get_full_job(job)
    params = ExecutionParams(
        selector=_job_subset_selector(location, job),
        run_config=request.run_config, mode=None,
        execution_metadata=ExecutionMetadata(run_id=request.run_id, tags=request.tags,
                                             root_run_id=None, parent_run_id=None),
        step_keys=None,
    )
    try:
        run = create_valid_pipeline_run(workspace, remote_job, params)
    except DagsterRunAlreadyExists:
        return RequestOutcome("deduplicated", request.run_id, request.deduplicated_reason())
    workspace.instance.submit_run(run.run_id, workspace=workspace)
    return RequestOutcome("accepted", run.run_id)


def _job_subset_selector(location: str, job: str):
    from dagster._core.definitions.selector import JobSubsetSelector

    return JobSubsetSelector(location_name=location, repository_name="__repository__", job_name=job,
                             op_selection=None)
