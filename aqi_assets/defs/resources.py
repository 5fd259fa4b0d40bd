"""Resources shared by assets, checks and sensors: source, lake and IO manager, MLflow tracking and registry."""


import sys
import time
from typing import Any

from typing import TYPE_CHECKING

import dagster as dg
import pandas as pd
from pydantic import Field

from aqi_assets.core.data.lake import Lake
from aqi_assets.core.training.registry import configure_mlflow
from aqi_assets.core.configuration.settings import lake_root, mlflow_artifact_root, mlflow_experiment, mlflow_tracking_uri
from aqi_assets.core.data.sources import ObservationSource, source_from_spec

if TYPE_CHECKING:  # MLflow (and dagster-mlflow, which imports it) load in the steps that use them
    from mlflow.tracking import MlflowClient


class ObservationSourceResource(dg.ConfigurableResource):
    """The configured observation source (``AQI_SOURCE``: simulated, prsa:<dir> or csv:<dir>)."""

    spec: str = Field(default="", description="Source spec; empty means $AQI_SOURCE, else 'simulated'.")

    def get(self) -> ObservationSource:
        return source_from_spec(self.spec or None)


class LakeResource(dg.ConfigurableResource):
    """The platform's file store (Parquet/JSON per dataset and partition)."""

    root: str = Field(default="", description="Directory; empty means $AQI_LAKE_DIR or $DAGSTER_HOME/lake.")

    def get(self) -> Lake:
        return Lake(self.root or lake_root())


RUNS_FOLDER = "runs"
RUN_COPY_DAYS = 2


class LakeIOManager(dg.ConfigurableIOManager):
    """Stores asset values in the lake: DataFrames as Parquet, anything else as JSON.

    The dataset is the asset key path; the file is the partition key (``_`` when unpartitioned),
    so sensors and the backtest read the same files without going through Dagster. An
    unpartitioned value is also kept under ``<dataset>/runs/<run id>`` for ``RUN_COPY_DAYS``, and
    a step reads the value its own run produced: two retrainings running at once never read each
    other's ``training_dataset``.
    """

    root: str = Field(default="", description="Directory; empty means $AQI_LAKE_DIR or $DAGSTER_HOME/lake.")

    @property
    def lake(self) -> Lake:
        return Lake(self.root or lake_root())

    @staticmethod
    def _dataset(key: dg.AssetKey) -> str:
        return "/".join(key.path)

    def _write(self, dataset: str, key: str | None, obj: Any):
        write = self.lake.write_frame if isinstance(obj, pd.DataFrame) else self.lake.write_json
        return write(dataset, key, obj)

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is None:
            return
        dataset = self._dataset(context.asset_key)
        key = context.partition_key if context.has_partition_key else None
        path = self._write(dataset, key, obj)
        if key is None and context.run_id:
            self._write(f"{dataset}/{RUNS_FOLDER}", context.run_id, obj)
            self._prune(dataset)
        context.add_output_metadata({"path": dg.MetadataValue.path(str(path))})

    def _prune(self, dataset: str) -> None:
        folder = self.lake.root / dataset / RUNS_FOLDER
        cutoff = time.time() - RUN_COPY_DAYS * 86400
        for path in folder.iterdir():
            if path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)

    def load_input(self, context: dg.InputContext) -> Any:
        dataset = self._dataset(context.asset_key)
        if not context.has_asset_partitions:
            run_id = context.upstream_output.run_id if context.upstream_output is not None else None
            copies = f"{dataset}/{RUNS_FOLDER}"
            if run_id and (self.lake.has(copies, run_id) or self.lake.has(copies, run_id, ".json")):
                return self._load_one(copies, run_id)
        keys = context.asset_partition_keys if context.has_asset_partitions else [None]
        values = [self._load_one(dataset, key) for key in keys]
        if len(values) == 1:
            return values[0]
        if all(isinstance(v, pd.DataFrame) for v in values):
            return pd.concat(values, ignore_index=True)
        return dict(zip(keys, values))

    def _load_one(self, dataset: str, key: str | None) -> Any:
        if self.lake.has(dataset, key):
            return self.lake.read_frame(dataset, key)
        record = self.lake.read_json(dataset, key)
        if record is None:
            raise FileNotFoundError(
                f"{dataset}{'/' + key if key else ''} has not been materialized "
                f"(nothing at {self.lake.path(dataset, key)})"
            )
        return record


class MlflowRegistryResource(dg.ConfigurableResource):
    """The MLflow model registry (embedded SQLite by default, any server with MLFLOW_TRACKING_URI)."""

    tracking_uri: str = Field(default="", description="Empty means $MLFLOW_TRACKING_URI or the embedded store.")
    experiment: str = Field(default="", description="Empty means $AQI_MLFLOW_EXPERIMENT or 'aqi_retraining'.")

    def client(self) -> "MlflowClient":
        from mlflow.tracking import MlflowClient

        configure_mlflow(self.tracking_uri or mlflow_tracking_uri(), mlflow_artifact_root(),
                         self.experiment or mlflow_experiment())
        return MlflowClient()


#: dagster-mlflow's ``CONFIG_SCHEMA`` (restated so that loading the definitions does not import
#: MLflow; a test keeps the two equal), with ``experiment_name`` optional.
_TRACKING_SCHEMA = {
    "experiment_name": dg.Field(dg.Noneable(dg.StringSource), default_value=None, is_required=False,
                                description="Empty means $AQI_MLFLOW_EXPERIMENT or 'aqi_retraining'."),
    "mlflow_tracking_uri": dg.Field(dg.Noneable(dg.StringSource), default_value=None, is_required=False,
                                    description="MlFlow tracking server uri."),
    "parent_run_id": dg.Field(dg.Noneable(str), default_value=None, is_required=False,
                              description="Mlflow run ID of parent run if this is a nested run."),
    "mlflow_run_id": dg.Field(dg.Noneable(str), default_value=None, is_required=False,
                              description="Mlflow run ID to use for this run."),
    "env": dg.Field(dg.Permissive(), description="Environment variables for mlflow setup."),
    "env_to_tag": dg.Field(dg.Noneable(list), default_value=None, is_required=False,
                           description="List of environment variables to log as tags in mlflow."),
    "extra_tags": dg.Field(dg.Permissive(), description="Any extra key-value tags to log to mlflow."),
}


class _ResolvedConfigContext:
    """The init context with MLflow settings resolved from the environment where config left them empty."""

    def __init__(self, context, config: dict):
        self._context = context
        self.resource_config = config

    def __getattr__(self, name):
        return getattr(self._context, name)


class MlflowUnavailable(Exception):
    """MLflow could not be reached; raised in the step body, so the step's RetryPolicy applies."""


class UnreachableTracking:
    """Stands in for the tracker when MLflow is down as a step starts: the step fails on first use."""

    def __init__(self, uri: str, error: Exception):
        self.uri, self.error = uri, error

    def ensure_reachable(self) -> None:
        raise MlflowUnavailable(f"MLflow tracking server at {self.uri} is unreachable: "
                                f"{type(self.error).__name__}: {str(self.error)[:300]}")


@dg.resource(config_schema=_TRACKING_SCHEMA)
def mlflow_tracking(init_context):
    """dagster-mlflow's tracking resource: one MLflow run per Dagster run, resumed by every step.

    The experiment is created with the platform's artifact root first (a SQLite backend would
    otherwise put artifacts under the working directory), and each step closes the run it
    resumed (FINISHED, or FAILED when the step raised), so no run is left "running". When MLflow
    cannot be reached the resource still starts (``UnreachableTracking``): the step body then
    raises ``MlflowUnavailable`` and is retried with exponential backoff like any transient error.
    """
    import mlflow
    from dagster_mlflow.resources import MlFlow

    config = dict(init_context.resource_config)
    config["mlflow_tracking_uri"] = config.get("mlflow_tracking_uri") or mlflow_tracking_uri()
    config["experiment_name"] = config.get("experiment_name") or mlflow_experiment()
    try:
        configure_mlflow(config["mlflow_tracking_uri"], mlflow_artifact_root(), config["experiment_name"])
        tracker = MlFlow(_ResolvedConfigContext(init_context, config))
    except Exception as exc:  # noqa: BLE001 - any failure to reach the store is reported in the step
        init_context.log.warning(f"MLflow at {config['mlflow_tracking_uri']} unreachable: {exc}")
        yield UnreachableTracking(config["mlflow_tracking_uri"], exc)
        return
    yield tracker
    # Teardown runs inside Dagster's error handling when the step raised (as dagster-mlflow's own
    # cleanup relies on), so sys.exc_info tells a failed step from a finished one.
    tracker.cleanup_on_error()
    if sys.exc_info()[1] is None and mlflow.active_run() is not None:
        mlflow.end_run()


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={
            "source": ObservationSourceResource(),
            "lake": LakeResource(),
            "io_manager": LakeIOManager(),
            "mlflow_registry": MlflowRegistryResource(),
            "mlflow": mlflow_tracking,
        }
    )
