"""The three model assets and their gates: one step trains the selected model(s), logs, registers and judges.

``xgboost_model``, ``lstm_model`` and ``gnn_model`` are one subsettable multi-asset: a run
selecting one model (``retrain_<model>``) trains that model only; ``manual_retraining`` selects
all three and trains the one its config names, so the other two never run a step. Each candidate
is scored beside persistence and the champion on the same holdout, logged to MLflow and
registered (the materialization links the MLflow run and version, ``AQI_MLFLOW_UI_URL``); its
four gates are evaluated in the same step and recorded as asset checks with
metric, threshold and value. A failed gate is an expected outcome: the promotion declines
(``promotion.py``) and the run still succeeds.

Failures: a lost connection or an I/O error (``core.training.failures.is_transient``) is retried after
``AQI_TRAINING_RETRY_DELAY_SECONDS`` (10 s), then 2× and 4× that; anything else fails at once,
naming the cause in one line.
"""

import os

import dagster as dg
import pandas as pd
from pydantic import Field

from aqi_assets.core.training import registry
from aqi_assets.core.training.candidate import TrainingDataError, score_champion, train_candidate
from aqi_assets.core.configuration.config import MODEL_NAMES
from aqi_assets.core.configuration.store import current_config
from aqi_assets.core.training.failures import is_transient, one_line
from aqi_assets.core.training.forecasting import load_forecaster
from aqi_assets.core.training.gates import GATE_NAMES, GateResult, evaluate_gates
from aqi_assets.core.configuration.settings import mlflow_run_url, mlflow_version_url
from aqi_assets.core.data.station_graph import StationGraph
from aqi_assets.core.training.tracking import log_candidate
from aqi_assets.defs.executor import model_step_tags
from aqi_assets.defs.metadata import markdown_table
from aqi_assets.defs.resources import MlflowUnavailable, UnreachableTracking
from aqi_assets.defs.run_tags import trigger_of_run
from aqi_assets.defs.training.pool import RETRAINING_POOL

MODEL_KINDS = {"xgboost": "xgboost", "lstm": "pytorch", "gnn": "pytorch"}
MODEL_DESCRIPTIONS = {
    "xgboost": "Gradient-boosted trees on lag, rolling, pollutant, weather, calendar and neighbour features.",
    "lstm": "A recurrent network (torch LSTM) over each station's recent hours.",
    "gnn": "A spatio-temporal graph network (torch-geometric) over the station graph, recurrent over time.",
}
GATE_DESCRIPTIONS = {
    "rmse_within_limit": "Holdout RMSE ≤ gates.max_rmse (25 µg/m³ by default).",
    "accuracy_within_limit": "Share of forecasts within ±20 % ≥ gates.min_within_20 (70 % by default).",
    "beats_persistence": "Holdout RMSE below persistence (next hour = this hour) on the same rows.",
    "no_worse_than_champion": "Holdout RMSE ≤ champion's on the same holdout × (1 + gates.champion_tolerance).",
}
MODELS_OP = "train_models"
#: Retries of a transient failure, and the first delay (doubling each time).
MAX_RETRIES = 3


def retry_delay_seconds(retry_number: int) -> float:
    return float(os.environ.get("AQI_TRAINING_RETRY_DELAY_SECONDS", "10")) * 2 ** retry_number


def model_key(model: str) -> dg.AssetKey:
    return dg.AssetKey(f"{model}_model")


class ModelTrainingConfig(dg.Config):
    """Which model a run trains and why (``manual_retraining`` fills it from its own config)."""

    model: str = Field(default="", description="the model to train; empty: every selected model")
    reason: str = Field(default="", description="why it is retrained (manual runs)")
    severity: str = Field(default="", description="low | medium | high | critical (manual runs)")


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


def _gate_results(model: str, record: dict, config) -> list[GateResult]:
    champion = record.get("champion") or None
    results = evaluate_gates(record["metrics"], (champion or {}).get("metrics"), config.gates, config.training.target)
    if champion and champion.get("error"):
        results[-1] = GateResult(
            "no_worse_than_champion", False, "holdout RMSE vs champion", None, record["metrics"].get("rmse"),
            f"champion v{champion['version']} could not be scored: {champion['error']}")
    return results


def _check_result(model: str, version: str, result: GateResult) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=result.name, asset_key=model_key(model), passed=result.passed,
        severity=dg.AssetCheckSeverity.ERROR, description=result.message,
        metadata={
            "metric": result.metric,
            "threshold": dg.MetadataValue.float(round(float(result.threshold), 4)) if result.threshold is not None
            else "none",
            "value": dg.MetadataValue.float(round(float(result.value), 4)) if result.value is not None else "none",
            "version": version,
        },
    )


def _train_one(context: dg.AssetExecutionContext, model: str, options: ModelTrainingConfig,
               training_dataset: pd.DataFrame, station_graph: dict):
    """Train, log, register and judge one candidate; the materialization and its four gate results."""
    config = current_config(context.resources.lake.get())
    settings = config.training
    trigger = trigger_of_run(context.run.tags, options.reason, options.severity)
    context.log.info(f"training {model} ({settings.preset} preset): {trigger['trigger_type']} — {trigger['reason']}")
    champion = registry.champion(model)
    serving, load_error = None, None
    if champion is not None:
        try:
            serving = load_forecaster(registry.champion_uri(model))
        except Exception as exc:  # noqa: BLE001 - scored below as a failed gate; training starts from scratch
            load_error = exc
    warm = serving if settings.warm_start else None
    if settings.warm_start:
        context.log.info(f"warm start from champion v{champion.version}" if warm is not None else
                         "warm start requested but there is no loadable champion: training from scratch")
    candidate = train_candidate(model, training_dataset, StationGraph.from_dict(station_graph), settings,
                                progress=context.log.info, warm_start=warm)
    if champion is not None:
        try:
            if load_error is not None:
                raise load_error
            score_champion(candidate, serving, str(champion.version))
        except Exception as exc:  # noqa: BLE001 - the gate then fails with this message; the champion stays
            candidate.champion_version, candidate.champion_error = str(champion.version), one_line(exc)
            context.log.warning(f"could not score champion v{champion.version}: {one_line(exc)}")
    tracked = log_candidate(candidate, settings, {**trigger_tags(trigger), "dagster_run_id": context.run_id})
    record = {**candidate.record(), **tracked, "trigger": trigger, "dagster_run_id": context.run_id}
    results = _gate_results(model, record, config)
    registry.tag_gate_results(model, tracked["version"], {r.name: r.passed for r in results})
    m = record["metrics"]
    context.log.info(f"{model} v{tracked['version']}: holdout RMSE {m['rmse']:.2f} "
                     f"(persistence {m['persistence_rmse']:.2f}), within ±20 % {m['within_20']:.1%}")
    for result in results:
        (context.log.info if result.passed else context.log.warning)(
            f"{model} v{tracked['version']} {result.name}: {result.message}")
    materialization = dg.MaterializeResult(
        asset_key=model_key(model),
        value=record,
        metadata={
            "version": tracked["version"],
            "model_uri": tracked["model_uri"],
            "mlflow_run": dg.MetadataValue.url(mlflow_run_url(tracked["mlflow_experiment_id"], tracked["mlflow_run_id"])),
            "mlflow_model_version": dg.MetadataValue.url(mlflow_version_url(tracked["registered_model"],
                                                                            tracked["version"])),
            "mlflow_run_id": tracked["mlflow_run_id"],
            "trigger_type": trigger["trigger_type"],
            "reason": trigger["reason"],
            "holdout_rmse": dg.MetadataValue.float(round(float(m["rmse"]), 3)),
            "holdout_within_20": dg.MetadataValue.float(round(float(m["within_20"]), 4)),
            "persistence_rmse": dg.MetadataValue.float(round(float(m["persistence_rmse"]), 3)),
            "champion_version": (record["champion"] or {}).get("version") or "none",
            "gates_passed": all(r.passed for r in results),
            "trained_through": record["trained_through"],
            "train_seconds": dg.MetadataValue.float(round(record["train_seconds"], 1)),
            "warm_start_from": (f"v{champion.version}" if (candidate.fit_report.get("warm_start") or {}).get("used")
                                else "none"),
            "metrics": markdown_table(_metric_rows(record), floatfmt=".4g"),
        },
        check_results=[_check_result(model, tracked["version"], r) for r in results],
    )
    return materialization


def trigger_tags(trigger: dict) -> dict[str, str]:
    return {"aqi/trigger_type": trigger["trigger_type"], "aqi/severity": trigger["severity"],
            "aqi/reason": trigger["reason"]}


@dg.multi_asset(
    name=MODELS_OP,
    outs={f"{m}_model": dg.AssetOut(
        group_name="models", kinds={MODEL_KINDS[m], "mlflow"}, is_required=False,
        description=(f"{MODEL_DESCRIPTIONS[m]} Trains a candidate on the training window, logs it to MLflow, "
                     f"registers a new version of aqi_predictor_{m}, scores the champion on the same holdout "
                     "and evaluates the four gates."))
          for m in MODEL_NAMES},
    check_specs=[dg.AssetCheckSpec(g, asset=model_key(m), description=GATE_DESCRIPTIONS[g])
                 for m in MODEL_NAMES for g in GATE_NAMES],
    ins={"training_dataset": dg.AssetIn(), "station_graph": dg.AssetIn()},
    can_subset=True,
    pool=RETRAINING_POOL,
    required_resource_keys={"mlflow", "lake"},
    op_tags=model_step_tags(),
)
def train_models(context: dg.AssetExecutionContext, config: ModelTrainingConfig, training_dataset: pd.DataFrame,
                 station_graph: dict):
    selected = [m for m in MODEL_NAMES if model_key(m) in context.selected_asset_keys]
    if config.model:
        selected = [m for m in selected if m == config.model]
    if isinstance(context.resources.mlflow, UnreachableTracking):
        try:
            context.resources.mlflow.ensure_reachable()
        except MlflowUnavailable as exc:
            _retry_or_fail(context, "MLflow", exc)
    for model in selected:
        try:
            yield _train_one(context, model, config, training_dataset, station_graph)
        except TrainingDataError as exc:
            raise dg.Failure(description=f"{model}: {exc}", allow_retries=False) from exc
        except (dg.Failure, dg.RetryRequested):
            raise
        except Exception as exc:  # noqa: BLE001 - sorted into transient (retried) and deterministic (fails now)
            _retry_or_fail(context, model, exc)


def _retry_or_fail(context: dg.AssetExecutionContext, what: str, exc: Exception):
    attempt = context.retry_number
    if is_transient(exc) and attempt < MAX_RETRIES:
        delay = retry_delay_seconds(attempt)
        context.log.warning(f"{what}: transient failure ({one_line(exc)}); retry {attempt + 1} of {MAX_RETRIES} "
                            f"in {delay:.0f} s")
        raise dg.RetryRequested(max_retries=MAX_RETRIES, seconds_to_wait=delay) from exc
    kind = "still failing after retries" if is_transient(exc) else "not retried (not a transient failure)"
    raise dg.Failure(description=f"{what}: {one_line(exc)} — {kind}", allow_retries=False) from exc
