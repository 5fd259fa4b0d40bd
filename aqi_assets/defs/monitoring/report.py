"""``retraining_report``: the weekly report (Monday 06:00), shown as Markdown with a plot and written to a file."""

from datetime import datetime, timedelta, timezone

import dagster as dg
from dagster._core.scheduler.instigation import InstigatorType, TickStatus

from aqi_assets.core.configuration.config import MODEL_NAMES
from aqi_assets.core.data.datasets import latest_observed_day
from aqi_assets.core.plots import png_markdown
from aqi_assets.core.monitoring.report import RetrainingRun, build_report
from aqi_assets.defs.monitoring.cadence import configured_cron_schedule
from aqi_assets.defs.resources import LakeResource
from aqi_assets.core.monitoring.health import HEALTH_DATASET
from aqi_assets.defs.run_tags import MODEL_TAG, OUTCOME_TAG, REASON_TAG, RETRAINING_TAG, TRIGGER_SENSORS, TRIGGER_TYPE_TAG

REPORTS_FOLDER = "reports"
_EVENTS = {dg.DagsterEventType.ASSET_CHECK_EVALUATION, dg.DagsterEventType.ASSET_MATERIALIZATION}


def run_model(run: dg.DagsterRun) -> str:
    """The model a retraining run trained: its tag, else the model enabled in its config."""
    if run.tags.get(MODEL_TAG):
        return run.tags[MODEL_TAG]
    config = (run.run_config or {}).get("ops", {}).get("train_models", {}).get("config", {})
    return config.get("model") if config.get("model") in MODEL_NAMES else "?"


def retraining_runs(instance: dg.DagsterInstance, since: datetime) -> list[RetrainingRun]:
    """Finished retraining runs created since ``since``, with their gate results and promotion."""
    finished = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
    records = instance.get_run_records(filters=dg.RunsFilter(tags={RETRAINING_TAG: "true"}, statuses=finished,
                                                             created_after=since))
    runs = []
    for record in records:
        run = record.dagster_run
        if run.tags.get(OUTCOME_TAG) == "deduplicated":  # a request answered by another run, not a retraining
            continue
        failed, promoted = [], False
        for entry in instance.all_logs(run.run_id, of_type=_EVENTS):
            event = entry.dagster_event
            if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
                if not event.asset_check_evaluation_data.passed:
                    failed.append(event.asset_check_evaluation_data.check_name)
            elif event.asset_key and event.asset_key.path[-1].endswith("_promotion"):
                promoted = True
        start = record.start_time or record.create_timestamp.timestamp()
        runs.append(RetrainingRun(
            run_id=run.run_id, model=run_model(run), trigger_type=run.tags.get(TRIGGER_TYPE_TAG, "?"),
            reason=run.tags.get(REASON_TAG, ""), succeeded=run.status == dg.DagsterRunStatus.SUCCESS,
            started=start, seconds=max((record.end_time or start) - start, 0.0), gates_failed=tuple(failed),
            promoted=promoted,
        ))
    return runs


def platform_figures(instance: dg.DagsterInstance, lake, since: datetime) -> dict:
    """The week's trigger checks (sensor ticks without error / all) and the daemon's uptime."""
    after = since.timestamp()
    total = failed = 0
    for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
        if state.name not in TRIGGER_SENSORS:
            continue
        ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, after=after)
        done = [t for t in ticks if t.status != TickStatus.STARTED]
        total += len(done)
        failed += sum(1 for t in done if t.status == TickStatus.FAILURE)
    health = lake.read_json(HEALTH_DATASET) or {}
    up_since = health.get("daemon_up_since")
    return {"trigger_checks": total, "failed_trigger_checks": failed,
            "uptime_hours": (datetime.now(timezone.utc).timestamp() - up_since) / 3600 if up_since else None}


@dg.asset(
    group_name="monitoring",
    kinds={"markdown"},
    description=(
        "Weekly: retraining activity, triggers by type, success rate, average duration, promotion rate, "
        "each model's live-RMSE trend, recommendations. Written to `<lake>/reports/` as Markdown and PNG."
    ),
    deps=["model_performance"],
)
def retraining_report(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult[str]:
    store = lake.get()
    since = datetime.now(timezone.utc) - timedelta(days=7)
    runs = retraining_runs(context.instance, since)
    last = latest_observed_day(store) or since.date()
    days = store.days("model_performance")
    scores = store.read_days("model_performance", days) if days else None
    report = build_report(runs, scores, last, platform_figures(context.instance, store, since))
    png = report.plot_png()
    folder = store.root / REPORTS_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"retraining_report_{last.isoformat()}"
    if png:
        stem.with_suffix(".png").write_bytes(png)
    text = report.markdown(f"![live RMSE]({stem.with_suffix('.png').name})" if png else "")
    stem.with_suffix(".md").write_text(text)
    context.log.info(f"report written to {stem.with_suffix('.md')}")
    figures = report.figures
    return dg.MaterializeResult(
        value=text,
        metadata={
            "report": dg.MetadataValue.md(report.markdown(png_markdown(png, "live RMSE") if png else "")),
            "path": dg.MetadataValue.path(str(stem.with_suffix(".md"))),
            "retrainings": figures["retrainings"],
            "promotions": figures["promotions"],
            "success_rate": figures["success_rate"] if figures["success_rate"] is not None else "n/a",
            "trigger_check_success_rate": figures["trigger_check_success_rate"]
            if figures["trigger_check_success_rate"] is not None else "n/a",
            "uptime_hours": round(figures["uptime_hours"], 1) if figures["uptime_hours"] is not None else "n/a",
        },
    )


retraining_report_job = dg.define_asset_job(
    name="retraining_report_job", selection=dg.AssetSelection.assets("retraining_report"),
    description="Build the weekly retraining report.",
)

weekly_retraining_report = configured_cron_schedule(
    "weekly_retraining_report", retraining_report_job, "operations.report_cron", lambda c: c.operations.report_cron,
    "The weekly retraining report when operations.report_cron fires (Monday 06:00 UTC by default; read from "
    "the configuration in force on every tick).",
)
