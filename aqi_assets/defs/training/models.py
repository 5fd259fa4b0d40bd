"""The three model assets, their blocking gates, promotions, and the retraining/rollback jobs."""

import os
from datetime import date, timedelta

import dagster as dg
import pandas as pd
from pydantic import Field

from aqi_assets.core import registry
from aqi_assets.core.candidate import TrainingDataError, score_champion, train_candidate
from aqi_assets.core.config import MODEL_NAMES
from aqi_assets.core.config_store import current_config
from aqi_assets.core.datasets import latest_observed_day
from aqi_assets.core.forecasting import load_forecaster
from aqi_assets.core.gates import GATE_NAMES, evaluate_gates
from aqi_assets.core.station_graph import StationGraph
from aqi_assets.core.tracking import log_candidate
from aqi_assets.defs.executor import model_step_tags, retraining_executor
from aqi_assets.defs.metadata import markdown_table
from aqi_assets.defs.resources import LakeResource, MlflowRegistryResource, UnreachableTracking
from aqi_assets.defs.run_tags import MODEL_TAG, RETRAINING_TAG, TRIGGER_TYPE_TAG, trigger_of_run

MODEL_KINDS = {"xgboost": "xgboost", "lstm": "pytorch", "gnn": "pytorch"}
MODEL_DESCRIPTIONS = {
    "xgboost": "Gradient-boosted trees on lag, rolling, pollutant, weather, calendar and neighbour features.",
    "lstm": "A recurrent network (torch LSTM) over each station's recent hours.",
    "gnn": "A spatio-temporal graph network (torch-geometric) over the station graph, recurrent over time.",
}
#: Transient failures (MLflow or the filesystem briefly unavailable) are retried with backoff.
#: Transient failures (MLflow unreachable, a lost connection) are retried 3 times after 10, 20 and
#: 40 s (± jitter); AQI_TRAINING_RETRY_DELAY_SECONDS sets the first delay.
TRAINING_RETRY = dg.RetryPolicy(max_retries=3, delay=float(os.environ.get("AQI_TRAINING_RETRY_DELAY_SECONDS", "10")),
                                backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
GATE_DESCRIPTIONS = {
    "rmse_within_limit": "Holdout RMSE ≤ gates.max_rmse (25 µg/m³ by default).",
    "accuracy_within_limit": "Share of forecasts within ±20 % ≥ gates.min_within_20 (70 % by default).",
    "beats_persistence": "Holdout RMSE below persistence (next hour = this hour) on the same rows.",
    "no_worse_than_champion": "Holdout RMSE ≤ champion's on the same holdout × (1 + gates.champion_tolerance).",
}


class ModelTrainingConfig(dg.Config):
    """Per-run options of a model asset (the manual_retraining job fills them from its config)."""

    enabled: bool = Field(default=True, description="false skips this model in the run")
    reason: str = Field(default="", description="why it is retrained (manual runs)")
    severity: str = Field(default="", description="low | medium | high | critical (manual runs)")


class PromotionConfig(dg.Config):
    """``promote`` the run's candidate (default) or ``rollback`` to the previous champion."""

    action: str = Field(default="promote", description="promote | rollback")
    to_version: str = Field(default="", description="rollback target (default: previous_champion)")
    reason: str = Field(default="", description="why (recorded in the audit trail)")


def _metric_rows(record: dict) -> pd.DataFrame:
    champion = (record.get("champion") or {}).get("metrics") or {}
    rows = []
    for metric in ("rmse", "mae", "within_20", "aqi_category_accuracy"):
        rows.append({
            "metric": metric,
            "candidate": record["metrics"].get(metric),
            "champion": champion.get(metric),
            "persistence": record["metrics"].get(f"persistence_{metric}"),
        })
    return pd.DataFrame(rows)


def build_model_asset(model: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=f"{model}_model",
        group_name="models",
        kinds={MODEL_KINDS[model], "mlflow"},
        ins={"training_dataset": dg.AssetIn(), "station_graph": dg.AssetIn()},
        pool="retraining",
        retry_policy=TRAINING_RETRY,
        output_required=False,
        required_resource_keys={"mlflow", "lake"},
        tags={MODEL_TAG: model},
        op_tags=model_step_tags(),
        description=(
            f"{MODEL_DESCRIPTIONS[model]} Trains a candidate on the training window, logs it to MLflow, "
            f"registers a new version of aqi_predictor_{model} and scores the champion on the same holdout."
        ),
    )
    def _model_asset(context: dg.AssetExecutionContext, config: ModelTrainingConfig,
                     training_dataset: pd.DataFrame, station_graph: dict):
        if not config.enabled:
            context.log.info(f"{model} is not selected in this run; skipped")
            return
        if isinstance(context.resources.mlflow, UnreachableTracking):
            context.resources.mlflow.ensure_reachable()  # raises: retried with backoff, then fails
        settings = current_config(context.resources.lake.get()).training
        trigger = trigger_of_run(context.run.tags, config.reason, config.severity)
        context.log.info(f"training {model} ({settings.preset} preset): {trigger['trigger_type']} — {trigger['reason']}")
        try:
            candidate = train_candidate(model, training_dataset, StationGraph.from_dict(station_graph), settings,
                                        progress=context.log.info)
        except TrainingDataError as exc:
            raise dg.Failure(description=f"{model}: {exc}", allow_retries=False) from exc
        champion = registry.champion(model)
        if champion is not None:
            try:
                score_champion(candidate, load_forecaster(registry.champion_uri(model)), str(champion.version))
            except Exception as exc:  # the gate then fails with this message; the champion stays
                candidate.champion_version, candidate.champion_error = str(champion.version), str(exc)
                context.log.warning(f"could not score champion v{champion.version}: {exc}")
        tags = {"aqi/trigger_type": trigger["trigger_type"], "aqi/severity": trigger["severity"],
                "aqi/reason": trigger["reason"], "dagster_run_id": context.run_id}
        tracked = log_candidate(candidate, settings, tags)
        record = {**candidate.record(), **tracked, "trigger": trigger, "dagster_run_id": context.run_id}
        m = record["metrics"]
        context.log.info(f"{model} v{tracked['version']}: holdout RMSE {m['rmse']:.2f} "
                         f"(persistence {m['persistence_rmse']:.2f}), within ±20 % {m['within_20']:.1%}")
        yield dg.MaterializeResult(
            value=record,
            metadata={
                "version": tracked["version"],
                "model_uri": tracked["model_uri"],
                "mlflow_run_id": tracked["mlflow_run_id"],
                "trigger_type": trigger["trigger_type"],
                "reason": trigger["reason"],
                "holdout_rmse": float(m["rmse"]),
                "holdout_within_20": float(m["within_20"]),
                "persistence_rmse": float(m["persistence_rmse"]),
                "champion_version": (record["champion"] or {}).get("version") or "none",
                "trained_through": record["trained_through"],
                "train_seconds": record["train_seconds"],
                "metrics": markdown_table(_metric_rows(record), floatfmt=".4g"),
            },
        )

    return _model_asset


def build_gates(model: str) -> dg.AssetChecksDefinition:
    asset_key = dg.AssetKey(f"{model}_model")

    @dg.multi_asset_check(
        name=f"{model}_gates",
        specs=[dg.AssetCheckSpec(g, asset=asset_key, blocking=True, description=GATE_DESCRIPTIONS[g])
               for g in GATE_NAMES],
        ins={"candidate": dg.AssetIn(key=asset_key)},
        description=f"Validation gates of {model} candidates: a failure stops the promotion in the same run.",
    )
    def _gates(context: dg.AssetCheckExecutionContext, candidate: dict, lake: LakeResource,
               mlflow_registry: MlflowRegistryResource):
        config = current_config(lake.get())
        champion = candidate.get("champion") or None
        champion_metrics = (champion or {}).get("metrics")
        target = (candidate.get("hyperparams") or {}).get("target", config.training.target)
        results = evaluate_gates(candidate["metrics"], champion_metrics, config.gates, target)
        if champion and champion.get("error"):
            results[-1] = type(results[-1])(
                "no_worse_than_champion", False, "holdout RMSE vs champion", None, candidate["metrics"].get("rmse"),
                f"champion v{champion['version']} could not be scored: {champion['error']}")
        mlflow_registry.client()
        registry.tag_gate_results(model, candidate["version"], {r.name: r.passed for r in results})
        for result in results:
            (context.log.info if result.passed else context.log.warning)(f"{model} v{candidate['version']} {result.name}: {result.message}")
            yield dg.AssetCheckResult(
                check_name=result.name,
                asset_key=asset_key,
                passed=result.passed,
                severity=dg.AssetCheckSeverity.ERROR,
                description=result.message,
                metadata={
                    "metric": result.metric,
                    "threshold": dg.MetadataValue.float(float(result.threshold)) if result.threshold is not None else "none",
                    "value": dg.MetadataValue.float(float(result.value)) if result.value is not None else "none",
                    "version": candidate["version"],
                },
            )

    return _gates


def _next_data_day(lake: LakeResource) -> str:
    latest = latest_observed_day(lake.get())
    return (latest + timedelta(days=1) if latest else date.today()).isoformat()


def build_promotion(model: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=f"{model}_promotion",
        group_name="promotion",
        kinds={"mlflow"},
        ins={"candidate": dg.AssetIn(key=f"{model}_model")},
        description=(
            f"Moves the aqi_predictor_{model}@champion alias (promotion or rollback). Each materialization "
            "records model, from → to version, trigger, reason, metrics and time: the audit trail of which "
            "version served when."
        ),
    )
    def _promotion(context: dg.AssetExecutionContext, config: PromotionConfig, candidate: dict,
                   mlflow_registry: MlflowRegistryResource, lake: LakeResource):
        client = mlflow_registry.client()
        try:
            if config.action == "rollback":
                record = registry.rollback(
                    model, reason=config.reason or "rollback requested", to_version=config.to_version or None,
                    trigger_type="manual", run_id=context.run_id,
                    serving_since=_next_data_day(lake), client=client)
            elif config.action == "promote":
                failed = registry.failed_gates(model, candidate["version"], GATE_NAMES, client=client)
                if failed:
                    raise dg.Failure(
                        description=f"refusing to promote {model} v{candidate['version']}: gate(s) "
                                    f"{', '.join(failed)} did not pass; the champion is unchanged",
                        allow_retries=False)
                trigger = candidate.get("trigger") or {}
                serving_since = date.fromisoformat(candidate["trained_through"]) + timedelta(days=1)
                record = registry.promote(
                    model, candidate["version"], trigger_type=trigger.get("trigger_type", "manual"),
                    reason=trigger.get("reason", ""), metrics=candidate["metrics"], run_id=context.run_id,
                    serving_since=serving_since.isoformat(), client=client)
            else:
                raise dg.Failure(description=f"unknown promotion action {config.action!r}: use promote or rollback",
                                 allow_retries=False)
        except registry.RegistryError as exc:
            raise dg.Failure(description=f"{model}: {exc}", allow_retries=False) from exc
        context.log.info(f"{record.registered_model}@champion: v{record.from_version or '-'} → v{record.to_version} "
                         f"({record.action}, {record.trigger_type}: {record.reason})")
        metrics = record.metrics or {}
        return dg.MaterializeResult(
            value=record.to_dict(),
            metadata={
                "model": model,
                "action": record.action,
                "from_version": record.from_version or "none",
                "to_version": record.to_version,
                "trigger_type": record.trigger_type,
                "reason": record.reason,
                "at": record.at,
                "holdout_rmse": float(metrics.get("rmse", float("nan"))),
                "holdout_within_20": float(metrics.get("within_20", float("nan"))),
            },
        )

    return _promotion


def retraining_job(model: str) -> dg.JobDefinition:
    return dg.define_asset_job(
        name=f"retrain_{model}",
        selection=dg.AssetSelection.assets("training_dataset", f"{model}_model", f"{model}_promotion"),
        tags={RETRAINING_TAG: "true", MODEL_TAG: model},
        executor_def=retraining_executor(),
        description=f"Retrain {model}: fresh training window, candidate, gates, promotion.",
    )


def rollback_job(model: str) -> dg.JobDefinition:
    return dg.define_asset_job(
        name=f"rollback_{model}",
        selection=dg.AssetSelection.assets(f"{model}_promotion"),
        config={"ops": {f"{model}_promotion": {"config": {"action": "rollback", "reason": "rollback requested"}}}},
        tags={MODEL_TAG: model, TRIGGER_TYPE_TAG: "manual"},
        description=f"Move aqi_predictor_{model}@champion back to previous_champion (recorded like a promotion).",
    )


@dg.config_mapping(config_schema={
    "model": dg.Field(dg.Enum("Model", [dg.EnumValue(m) for m in MODEL_NAMES]), description="which model"),
    "reason": dg.Field(str, description="why the model is retrained"),
    "severity": dg.Field(dg.Enum("Severity", [dg.EnumValue(s) for s in ("low", "medium", "high", "critical")]),
                         default_value="medium"),
})
def _manual_config(values: dict) -> dict:
    from aqi_assets.core.triggers import manual_trigger

    manual_trigger(values["model"], values["reason"], values["severity"])  # validates, names the bad value
    return {"ops": {f"{m}_model": {"config": {"enabled": m == values["model"], "reason": values["reason"],
                                              "severity": values["severity"]}} for m in MODEL_NAMES}}


manual_retraining = dg.define_asset_job(
    name="manual_retraining",
    selection=dg.AssetSelection.assets("training_dataset", *[f"{m}_model" for m in MODEL_NAMES],
                                       *[f"{m}_promotion" for m in MODEL_NAMES]),
    config=_manual_config,
    tags={RETRAINING_TAG: "true", TRIGGER_TYPE_TAG: "manual"},
    executor_def=retraining_executor(),
    description="Retrain one model now: config `model`, `reason`, `severity` (also from GraphQL / aqi-retrain trigger).",
)


RETRAINING_JOBS = {m: retraining_job(m) for m in MODEL_NAMES}


@dg.definitions
def training_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=[a for m in MODEL_NAMES for a in (build_model_asset(m), build_promotion(m))],
        asset_checks=[build_gates(m) for m in MODEL_NAMES],
        jobs=[*RETRAINING_JOBS.values(), *(rollback_job(m) for m in MODEL_NAMES), manual_retraining],
    )
