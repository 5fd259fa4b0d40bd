"""MLflow registry operations: model names, the ``champion`` alias, promotion, rollback, gate tags.

MLflow 3 deprecates stages, so the serving version is the alias ``champion`` and the one before
it ``previous_champion``; a ``stage`` tag (Production / Archived / Candidate / Rejected) is kept
on versions for people used to stages. Every alias move returns a ``PromotionRecord``: the audit
trail the promotion asset records as its materialization.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from aqi_assets.core.configuration.config import MODEL_NAMES

if TYPE_CHECKING:  # MLflow is slow to import: the code location loads this module without it
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

CHAMPION = "champion"
PREVIOUS_CHAMPION = "previous_champion"
GATE_TAG_PREFIX = "gate."
#: The first data day a version serves (the day after its training window), for live scoring.
SERVING_SINCE_TAG = "aqi.serving_since"


class RegistryError(Exception):
    """A registry operation that cannot be done (no such version, nothing to roll back to, ...)."""


def registered_model_name(model: str) -> str:
    if model not in MODEL_NAMES:
        raise RegistryError(f"unknown model {model!r}; expected one of {', '.join(MODEL_NAMES)}")
    return f"aqi_predictor_{model}"


def configure_mlflow(tracking_uri: str, artifact_root: str, experiment: str) -> str:
    """Point MLflow at ``tracking_uri`` and make sure ``experiment`` exists (artifacts under
    ``artifact_root`` when it is created here); the model registry lives on the same store.
    Returns the experiment id."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    configured = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    # MLflow also writes the URI into the environment; the platform's setting must not follow one
    # step's override into later steps of the same process (a long-lived worker runs many).
    if configured is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = configured
    with _sqlite_store_lock(tracking_uri):
        client = MlflowClient()
        found = client.get_experiment_by_name(experiment)
        if found is not None:
            return found.experiment_id
        try:
            return client.create_experiment(experiment, artifact_location=artifact_root)
        except MlflowException:  # created concurrently by another process
            found = client.get_experiment_by_name(experiment)
            if found is None:
                raise
            return found.experiment_id


@contextmanager
def _sqlite_store_lock(tracking_uri: str):
    """Hold an exclusive file lock beside an embedded (SQLite) tracking store while it is opened.

    Run workers that start together on a fresh instance would each create the store's tables
    and one would fail on the other's half-done migration; under the lock the first creates
    them and the others find them. Other stores (a tracking server, PostgreSQL) need no lock.
    """
    if not tracking_uri.startswith("sqlite:///"):
        yield
        return
    import fcntl

    path = Path(tracking_uri[len("sqlite:///"):])
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class PromotionRecord:
    """One change of the serving version: who served before, who serves now, why, with which numbers."""

    model: str
    registered_model: str
    action: str  # "promote" | "rollback"
    from_version: str | None
    to_version: str
    trigger_type: str
    reason: str
    metrics: dict = field(default_factory=dict)
    at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    dagster_run_id: str | None = None
    #: the first data day the new version serves
    serving_since: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _client() -> "MlflowClient":
    from mlflow.tracking import MlflowClient

    return MlflowClient()


def _alias_version(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def champion(model: str, client: MlflowClient | None = None) -> ModelVersion | None:
    """The version serving now (``@champion``), or ``None`` before the first promotion."""
    client = client or _client()
    return _alias_version(client, registered_model_name(model), CHAMPION)


def previous_champion(model: str, client: MlflowClient | None = None) -> ModelVersion | None:
    client = client or _client()
    return _alias_version(client, registered_model_name(model), PREVIOUS_CHAMPION)


def champion_uri(model: str) -> str:
    return f"models:/{registered_model_name(model)}@{CHAMPION}"


def tag_gate_results(model: str, version: str, results: dict[str, bool], client: MlflowClient | None = None) -> None:
    """Record gate verdicts on the version (``gate.<name>`` = passed/failed; stage Rejected on any failure)."""
    client = client or _client()
    name = registered_model_name(model)
    for gate, passed in results.items():
        client.set_model_version_tag(name, version, f"{GATE_TAG_PREFIX}{gate}", "passed" if passed else "failed")
    if not all(results.values()):
        client.set_model_version_tag(name, version, "stage", "Rejected")


def failed_gates(model: str, version: str, required: tuple[str, ...], client: MlflowClient | None = None) -> list[str]:
    """Gates among ``required`` that did not record a pass on this version (missing counts as failed)."""
    client = client or _client()
    tags = client.get_model_version(registered_model_name(model), version).tags
    return [g for g in required if tags.get(f"{GATE_TAG_PREFIX}{g}") != "passed"]


def _move_champion(client: MlflowClient, model: str, to_version: str, action: str,
                   trigger_type: str, reason: str, metrics: dict, run_id: str | None,
                   serving_since: str | None = None) -> PromotionRecord:
    name = registered_model_name(model)
    client.get_model_version(name, to_version)  # raises if the version does not exist
    current = _alias_version(client, name, CHAMPION)
    if current is not None and str(current.version) == str(to_version):
        raise RegistryError(f"{name} version {to_version} is already the champion")
    client.set_registered_model_alias(name, CHAMPION, str(to_version))
    if current is not None:
        client.set_registered_model_alias(name, PREVIOUS_CHAMPION, str(current.version))
        client.set_model_version_tag(name, str(current.version), "stage", "Archived")
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    client.set_model_version_tag(name, str(to_version), "stage", "Production")
    client.set_model_version_tag(name, str(to_version), "promoted_at", now)
    client.set_model_version_tag(name, str(to_version), "promoted_by", f"{action}:{trigger_type}")
    if serving_since:
        client.set_model_version_tag(name, str(to_version), SERVING_SINCE_TAG, serving_since)
    return PromotionRecord(
        model=model, registered_model=name, action=action,
        from_version=str(current.version) if current else None, to_version=str(to_version),
        trigger_type=trigger_type, reason=reason, metrics=metrics, at=now, dagster_run_id=run_id,
        serving_since=serving_since,
    )


def promote(model: str, version: str, *, trigger_type: str, reason: str, metrics: dict | None = None,
            run_id: str | None = None, serving_since: str | None = None,
            client: MlflowClient | None = None) -> PromotionRecord:
    """Make ``version`` the champion; the one it replaces becomes ``previous_champion``."""
    return _move_champion(client or _client(), model, str(version), "promote",
                          trigger_type, reason, metrics or {}, run_id, serving_since)


def rollback(model: str, *, reason: str, to_version: str | None = None, trigger_type: str = "manual",
             run_id: str | None = None, serving_since: str | None = None,
             client: MlflowClient | None = None) -> PromotionRecord:
    """Move ``champion`` back to ``previous_champion`` (or to ``to_version``)."""
    client = client or _client()
    name = registered_model_name(model)
    if to_version is None:
        previous = _alias_version(client, name, PREVIOUS_CHAMPION)
        if previous is None:
            raise RegistryError(f"{name} has no previous_champion to roll back to")
        to_version = str(previous.version)
    return _move_champion(client, model, str(to_version), "rollback", trigger_type, reason, {}, run_id,
                          serving_since)


def versions(model: str, client: MlflowClient | None = None) -> list[ModelVersion]:
    """Every registered version of the model, newest first."""
    from mlflow.exceptions import MlflowException

    client = client or _client()
    try:
        found = client.search_model_versions(f"name='{registered_model_name(model)}'")
    except MlflowException:
        return []
    return sorted(found, key=lambda v: int(v.version), reverse=True)
