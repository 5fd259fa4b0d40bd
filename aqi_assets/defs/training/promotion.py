"""``<model>_promotion``: moves the ``champion`` alias (promotion or rollback) and records every change.

A candidate whose gates did not all pass is not promoted: the step ends without a
materialization, the run is tagged ``aqi/outcome=kept_by_gate`` with the gate, and the log says
which gate and why (an expected outcome, not a failure). A rollback goes only to a version that
passed its gates, unless ``force`` is set with a reason, which is recorded.
"""

from datetime import date, timedelta

import dagster as dg
from pydantic import Field

from aqi_assets.core.training import registry
from aqi_assets.core.configuration.config import MODEL_NAMES
from aqi_assets.core.data.datasets import latest_observed_day
from aqi_assets.core.text import shorten
from aqi_assets.core.training.gates import GATE_NAMES
from aqi_assets.core.monitoring.live_scoring import performance_history
from aqi_assets.core.plots import promotion_history_png
from aqi_assets.defs.metadata import image
from aqi_assets.defs.resources import LakeResource, MlflowRegistryResource
from aqi_assets.defs.run_tags import GATE_TAG, MODEL_TAG, OUTCOME_TAG, TRIGGER_TYPE_TAG


class PromotionConfig(dg.Config):
    """``promote`` the run's candidate (default) or ``rollback`` to the previous champion."""

    action: str = Field(default="promote", description="promote | rollback")
    to_version: str = Field(default="", description="rollback target (default: previous_champion)")
    reason: str = Field(default="", description="why (recorded in the audit trail)")
    force: bool = Field(default=False, description="roll back to a version that did not pass its gates (needs a reason)")


def _next_data_day(lake: LakeResource) -> str:
    latest = latest_observed_day(lake.get())
    return (latest + timedelta(days=1) if latest else date.today()).isoformat()


def _rollback(context, model: str, config: PromotionConfig, client, lake: LakeResource) -> registry.PromotionRecord:
    target = config.to_version or None
    if target is None:
        previous = registry.previous_champion(model, client)
        target = str(previous.version) if previous is not None else None
    if target is not None:
        failed = registry.failed_gates(model, target, GATE_NAMES, client=client)
        if failed and not config.force:
            raise dg.Failure(description=f"refusing to roll {model} back to v{target}: it did not pass gate(s) "
                                         f"{', '.join(failed)}. Roll back with force and a reason to override; "
                                         "the champion is unchanged", allow_retries=False)
        if failed and not config.reason.strip():
            raise dg.Failure(description=f"a forced rollback of {model} to v{target} needs a reason",
                             allow_retries=False)
    reason = config.reason or "rollback requested"
    if config.force:
        reason = f"FORCED past failed gates: {reason}"
    return registry.rollback(model, reason=reason, to_version=target, trigger_type="manual", run_id=context.run_id,
                             serving_since=_next_data_day(lake), client=client)


def build_promotion(model: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=f"{model}_promotion",
        group_name="promotion",
        kinds={"mlflow"},
        ins={"candidate": dg.AssetIn(key=f"{model}_model")},
        output_required=False,
        description=(
            f"Moves the aqi_predictor_{model}@champion alias (promotion or rollback). Each materialization "
            "records model, from → to version, trigger, reason, metrics and time: the audit trail of which "
            "version served when. A candidate stopped by a gate is not promoted (the run says which gate)."
        ),
    )
    def _promotion(context: dg.AssetExecutionContext, config: PromotionConfig, candidate: dict,
                   mlflow_registry: MlflowRegistryResource, lake: LakeResource):
        client = mlflow_registry.client()
        try:
            if config.action == "rollback":
                record = _rollback(context, model, config, client, lake)
            elif config.action == "promote":
                failed = registry.failed_gates(model, candidate["version"], GATE_NAMES, client=client)
                if failed:
                    champion = registry.champion(model, client)
                    kept = f"v{champion.version}" if champion is not None else "no champion"
                    context.instance.add_run_tags(context.run_id, {OUTCOME_TAG: "kept_by_gate", GATE_TAG: failed[0]})
                    context.log.warning(f"{model} v{candidate['version']} not promoted: gate(s) {', '.join(failed)} "
                                        f"did not pass; the champion stays {kept}")
                    return
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
        context.instance.add_run_tags(context.run_id, {OUTCOME_TAG: "promoted" if record.action == "promote"
                                                       else "rolled_back"})
        changes = [*previous_changes(context.instance, context.asset_key), change_of(record)]
        context.log.info(f"{record.registered_model}@champion: v{record.from_version or '-'} → v{record.to_version} "
                         f"({record.action}, {record.trigger_type}: {record.reason})")
        metrics = record.metrics or {}
        yield dg.MaterializeResult(
            value=record.to_dict(),
            metadata={  # the history first: it is what a person opens this asset for
                "history": history_table(changes),
                "live_rmse": image(promotion_history_png(
                    model_scores(lake.get(), model), changes,
                    f"{model}: live RMSE of the serving version, each change marked"), "live RMSE and promotions"),
                "model": model,
                "action": record.action,
                "from_version": record.from_version or "none",
                "to_version": record.to_version,
                "trigger_type": record.trigger_type,
                "reason": record.reason,
                "at": record.at,
                "serving_since": record.serving_since or "",
                "holdout_rmse": dg.MetadataValue.float(round(float(metrics.get("rmse", float("nan"))), 3)),
                "holdout_within_20": dg.MetadataValue.float(round(float(metrics.get("within_20", float("nan"))), 4)),
            },
        )

    return _promotion


HISTORY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("serves from", "string"), ("changed at (UTC)", "string"), ("from", "string"), ("to", "string"),
    ("action", "string"), ("trigger", "string"), ("reason", "string"), ("holdout RMSE", "float"),
)


def change_of(record: registry.PromotionRecord) -> dict:
    """One change of the serving version, as the history lists it."""
    return {"serving_since": record.serving_since, "at": record.at, "from_version": record.from_version,
            "to_version": record.to_version, "action": record.action, "trigger_type": record.trigger_type,
            "reason": record.reason, "holdout_rmse": (record.metrics or {}).get("rmse")}


def previous_changes(instance: dg.DagsterInstance, key: dg.AssetKey, limit: int = 1000) -> list[dict]:
    """Every earlier change of the asset, oldest first, from its materializations' metadata."""
    found = instance.fetch_materializations(key, limit=limit, ascending=True).records
    changes = []
    for event in found:
        meta = {k: v.value for k, v in event.asset_materialization.metadata.items()}
        changes.append({field: meta.get(field) for field in ("serving_since", "at", "from_version", "to_version",
                                                             "action", "trigger_type", "reason", "holdout_rmse")})
    return changes


def history_table(changes: list[dict]) -> dg.MetadataValue:
    """Every change of the serving version, newest first: when, from → to, why, with which holdout RMSE."""
    def rmse(value):
        return None if value is None or value != value else round(float(value), 2)

    rows = [dg.TableRecord(dict(zip((name for name, _ in HISTORY_COLUMNS), (
        c.get("serving_since") or "-", (c.get("at") or "-")[:16].replace("T", " "),
        "-" if c.get("from_version") in (None, "", "none") else f"v{c['from_version']}", f"v{c['to_version']}",
        c.get("action") or "-", c.get("trigger_type") or "-", shorten(c.get("reason") or "", 60),
        rmse(c.get("holdout_rmse")),
    )))) for c in reversed(changes)]
    return dg.MetadataValue.table(rows, schema=dg.TableSchema(
        columns=[dg.TableColumn(name, kind) for name, kind in HISTORY_COLUMNS]))


def model_scores(lake, model: str):
    """The model's stored daily live scores (empty frame when none)."""
    history = performance_history(lake)
    return history[history["model"] == model]


def rollback_job(model: str) -> dg.JobDefinition:
    return dg.define_asset_job(
        name=f"rollback_{model}",
        selection=dg.AssetSelection.assets(f"{model}_promotion"),
        config={"ops": {f"{model}_promotion": {"config": {"action": "rollback", "reason": "rollback requested"}}}},
        tags={MODEL_TAG: model, TRIGGER_TYPE_TAG: "manual"},
        description=f"Move aqi_predictor_{model}@champion back to previous_champion (recorded like a promotion); "
                    "only to a version that passed its gates unless forced with a reason.",
    )


PROMOTIONS = [build_promotion(m) for m in MODEL_NAMES]
ROLLBACK_JOBS = [rollback_job(m) for m in MODEL_NAMES]
