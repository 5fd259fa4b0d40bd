"""``aqi-retrain demo``: the whole loop on the persistent instance, one simulated day at a time.

A first run ingests a warm-up window, trains the three models and promotes the ones that pass
their gates. Then each replayed day arrives: ``ingest_day`` stores the observations (with their
quality gates), feature sketches and the champions' live scores; ``retraining_schedule`` adapts
as its 03:00 schedule would; the real sensors (degradation, drift, schedule) are evaluated once,
and every run they request executes on the same instance (training, gates, promotion). Sensor
cursors are kept in the lake, so a second ``make demo`` continues where the first stopped.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import statistics
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import dagster as dg
import pandas as pd
from tabulate import tabulate
from tqdm import tqdm

from aqi_assets.core.configuration.config import MODEL_NAMES
from aqi_assets.core.configuration.store import current_config
from aqi_assets.core.data.datasets import latest_observed_day
from aqi_assets.core.monitoring.checks import FEATURE_STATS
from aqi_assets.core.data.lake import Lake
from aqi_assets.core.text import shorten
from aqi_assets.core.configuration.settings import lake_root
from aqi_assets.core.data.sources import source_from_spec
from aqi_assets.core.configuration.cron import ticks_between
from aqi_assets.defs.monitoring.cadence import CONFIGURED_CRONS, TICK_MINUTES
from aqi_assets.defs.monitoring.cursors import without_last_check
from aqi_assets.defs.run_tags import TRIGGER_SENSORS

#: Settings the demo puts in force (through ``retraining_config``): small models on a 28-day
#: window, so a retraining takes seconds. The simulated city is noisier hour to hour than Beijing
#: (persistence reaches ~66 % within ±20 %, the fast models 64-70 %), so the accuracy gate is
#: lowered to 60 %; every other gate keeps its shipped threshold. Four weeks are shorter than
#: the shipped 60-day backstop, and the recalibration moves O3 and SO2 more than PM2.5 (the
#: only feature the shipped drift rule retrains on), so the demo runs the seed's 7/14/21-day
#: schedule (adapted within 3..30 days) and retrains on drift in any feature, to show every
#: trigger at work.
DEMO_SETTINGS: dict[str, str] = {
    "training.preset": "fast",
    "training.window_days": "28",
    "training.validation_days": "4",
    "training.holdout_days": "4",
    "gates.min_within_20": "0.6",
    "schedule.days.xgboost": "7",
    "schedule.days.lstm": "14",
    "schedule.days.gnn": "21",
    "schedule.min_days": "3",
    "schedule.max_days": "30",
    "drift.retrain_features": '["all"]',
}
STATE_DATASET = "demo_state"
ADAPT_SCHEDULE, REPORT_SCHEDULE = "adapt_retraining_schedule", "weekly_retraining_report"
#: Runs log to the instance (visible in the UI), not to the terminal, where the progress bar is.
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@dataclass
class Tally:
    """What the demo did, for the final table."""

    days: list[date] = field(default_factory=list)
    triggers: Counter = field(default_factory=Counter)
    retrainings: int = 0
    failed_runs: int = 0
    gate_decisions: int = 0
    gates_failed: int = 0
    promotions: int = 0
    day_checks_failed: int = 0
    reports: list = field(default_factory=list)


class Demo:
    """Drives the definitions on one instance: ingestion, sensors, and the runs they request."""

    def __init__(self, instance: dg.DagsterInstance, say=print):
        from aqi_assets.definitions import defs

        self.defs = defs
        self.instance = instance
        self.lake = Lake(lake_root())
        self.source = source_from_spec()
        self.tally = Tally()
        self.say = say
        self.state = self.lake.read_json(STATE_DATASET) or {"cursors": {}, "run_keys": []}

    # ------------------------------------------------------------------ runs

    def execute(self, job_name: str, tags: dict | None = None, run_config: dict | None = None,
                partition_key: str | None = None) -> dg.ExecuteInProcessResult:
        job = self.defs.get_job_def(job_name)
        config = {**QUIET, **(run_config or {})}
        return job.execute_in_process(instance=self.instance, run_config=config, tags=tags or {},
                                      partition_key=partition_key, raise_on_error=False)

    def materialize(self, assets: list[str], run_config: dict | None = None) -> dg.ExecuteInProcessResult:
        job = self.defs.resolve_implicit_global_asset_job_def()
        return job.execute_in_process(instance=self.instance, run_config={**QUIET, **(run_config or {})},
                                      asset_selection=[dg.AssetKey(a) for a in assets], raise_on_error=False)

    def retrain(self, job_name: str, tags: dict) -> None:
        started = time.perf_counter()
        with contextlib.redirect_stderr(io.StringIO()):  # MLflow prints each registration there
            result = self.execute(job_name, tags=tags)
        model = tags.get("aqi/model", job_name.removeprefix("retrain_"))
        self.tally.retrainings += 1
        checks = [e.asset_check_evaluation_data for e in result.all_events
                  if e.event_type_value == "ASSET_CHECK_EVALUATION"]
        failed = [c.check_name for c in checks if not c.passed]
        self.tally.gate_decisions += len(checks) > 0
        self.tally.gates_failed += bool(failed)
        promoted = result.asset_materializations_for_node(f"{model}_promotion")
        self.tally.promotions += len(promoted)
        self.tally.failed_runs += not result.success
        trained = [e.step_materialization_data.materialization for e in result.get_asset_materialization_events()
                   if e.asset_key == dg.AssetKey(f"{model}_model")]
        figures = ""
        if trained:
            meta = trained[0].metadata
            figures = (f"holdout RMSE {meta['holdout_rmse'].value:.1f} (persistence {meta['persistence_rmse'].value:.1f}),"
                       f" within ±20 % {meta['holdout_within_20'].value:.0%};")
        if promoted:
            meta = promoted[0].metadata
            before = meta["from_version"].value
            outcome = f"promoted {'v' + before if before != 'none' else 'first version'} → v{meta['to_version'].value}"
        elif failed:
            outcome = f"gate(s) failed: {', '.join(failed)}; champion unchanged"
        else:
            outcome = "run failed; champion unchanged"
        detail = " ".join(filter(None, (figures, outcome)))
        self.say(f"{model}: {tags.get('aqi/trigger_type')} retraining ({shorten(tags.get('aqi/reason', ''), 60)}) → "
                  f"{detail} [{time.perf_counter() - started:.0f} s, run {result.run_id[:8]}]")

    # ------------------------------------------------------------------ steps

    def ingest(self, day: date) -> None:
        result = self.execute("ingest_day", partition_key=day.isoformat())
        evaluations = [e.asset_check_evaluation_data for e in result.all_events
                       if e.event_type_value == "ASSET_CHECK_EVALUATION" and not e.asset_check_evaluation_data.passed]
        failed = [e.check_name for e in evaluations if e.blocking]
        warned = [e.check_name for e in evaluations if not e.blocking]
        if failed:
            self.tally.day_checks_failed += 1
            self.say(f"{day}: data-quality gate(s) failed: {', '.join(failed)}")
        if warned:
            self.say(f"{day}: data-quality warning(s): {', '.join(warned)}")

    def setup(self, warmup_days: int) -> date:
        """Warm-up on a fresh platform: config, station graph, a training window of days, first models."""
        config = current_config(self.lake)
        wanted = {k: v for k, v in DEMO_SETTINGS.items() if not _same(_get(config, k), v)}
        if wanted:
            self.materialize(["retraining_config"], {"ops": {"retraining_config": {"config": {"set": wanted}}}})
            config = current_config(self.lake)
            refused = sorted(k for k in wanted if not _same(_get(config, k), wanted[k]))
            if refused:  # the config asset keeps the previous record when a value is invalid
                raise RuntimeError(f"the demo's settings were not put in force: {refused} (see the retraining_config run)")
        self.materialize(["station_graph"])
        first = self.source.first_day()
        days = [first + timedelta(days=i) for i in range(warmup_days)]
        for day in tqdm(days, desc="warm-up", unit="day", leave=False):
            self.ingest(day)
        for model in MODEL_NAMES:
            self.retrain(f"retrain_{model}", {"aqi/trigger_type": "manual", "aqi/severity": "medium",
                                              "aqi/reason": "demo: first model on the warm-up window",
                                              "aqi/model": model})
        return days[-1]

    def run_schedules(self, day: date, names: tuple[str, ...]) -> None:
        """Evaluate each schedule of ``names`` when its configured cron fires in the day after ``day``
        (when ``day``'s data is complete) and run what it requests, tagged as the daemon tags it."""
        config = current_config(self.lake)
        for name in names:
            setting, cron_of = CONFIGURED_CRONS[name]
            start = datetime.combine(day + timedelta(days=1), datetime.min.time())
            for fire in ticks_between(cron_of(config), start, start + timedelta(days=1)):
                schedule = self.defs.get_schedule_def(name)
                at = fire + timedelta(minutes=-fire.minute % TICK_MINUTES)
                resources = {key: self.defs.resources[key] for key in schedule.required_resource_keys}
                context = dg.build_schedule_context(instance=self.instance, resources=resources,
                                                    scheduled_execution_time=at.replace(tzinfo=timezone.utc))
                request = schedule.evaluate_tick(context).run_requests
                for r in request or []:
                    result = self.execute(schedule.job_name, tags={**r.tags, "dagster/schedule_name": name})
                    if name == REPORT_SCHEDULE and result.success:
                        self.tally.reports.append(f"{at:%Y-%m-%d %H:%M}")
                        self.say(f"{day}: weekly retraining_report built by {name} ({setting} = '{cron_of(config)}')")

    def tick(self) -> None:
        """Evaluate each retraining sensor once and run what it requests (each run key once)."""
        for name in TRIGGER_SENSORS:
            sensor = self.defs.get_sensor_def(name)
            resources = {key: self.defs.resources[key] for key in sensor.required_resource_keys}
            # each replayed day is a later check: the check interval has passed
            context = dg.build_sensor_context(instance=self.instance, resources=resources, sensor_name=name,
                                              cursor=without_last_check(self.state["cursors"].get(name)))
            result = sensor(context)
            self.state["cursors"][name] = context.cursor
            for request in result if isinstance(result, list) else []:
                if request.run_key in self.state["run_keys"]:
                    continue
                self.state["run_keys"].append(request.run_key)
                self.tally.triggers[request.tags.get("aqi/trigger_type", "?")] += 1
                self.retrain(request.job_name, {**request.tags, "dagster/sensor_name": name})

    def replay(self, days: list[date]) -> None:
        bar = tqdm(days, desc="replay", unit="day")
        for day in bar:
            bar.set_postfix_str(f"{day} · retrainings {self.tally.retrainings} · promotions {self.tally.promotions}")
            self.ingest(day)
            self.run_schedules(day, (ADAPT_SCHEDULE,))
            self.tick()
            self.run_schedules(day, (REPORT_SCHEDULE,))
            self.tally.days.append(day)
            self.lake.write_json(STATE_DATASET, None, self.state)

    # ------------------------------------------------------------------ report

    def drift_start(self) -> date | None:
        starts = [s.start for s in getattr(self.source, "scenarios", ())]
        return min(starts) if starts else None

    def rmse_table(self) -> list[list]:
        """Each model's mean daily live RMSE: before the drift; after it, by a model trained before it;
        after it, by a model retrained since (serving from after the drift's first day)."""
        onset = self.drift_start()
        stored = self.lake.days("model_performance")
        if not stored or onset is None:
            return [[model, "-", "-", "-"] for model in MODEL_NAMES]
        scores = self.lake.read_days("model_performance", stored)
        rows = []
        for model in MODEL_NAMES:
            mine = scores[scores["model"] == model]
            days = mine["date"].dt.date
            since = pd.to_datetime(mine["serving_since"], errors="coerce").dt.date
            before = mine[days < onset]
            stale = mine[(days >= onset) & ~(since > onset)]
            fresh = mine[(days >= onset) & (since > onset)]
            rows.append([model] + [_mean(part["rmse"]) for part in (before, stale, fresh)])
        return rows

    def summary(self, seconds: float) -> str:
        t = self.tally
        onset = self.drift_start()
        span = f"{t.days[0]}..{t.days[-1]}" if t.days else "none"
        facts = [
            ["days replayed", f"{len(t.days)} ({span})"],
            ["drift scenario", f"from {onset}" if onset else "none in this source"],
            ["triggers fired", ", ".join(f"{k} {v}" for k, v in sorted(t.triggers.items())) or "none"],
            ["retrainings run", t.retrainings],
            ["gate decisions", t.gate_decisions],
            ["gates failed (champion kept)", t.gates_failed],
            ["promotions", t.promotions],
            ["runs failed", t.failed_runs],
            ["days with a failed data gate", t.day_checks_failed],
            ["weekly reports built", f"{len(t.reports)} ({', '.join(t.reports)})" if t.reports else "none"],
            ["wall time", f"{seconds / 60:.1f} min"],
        ]
        rmse = tabulate(self.rmse_table(), headers=["model", "before the drift", "after: model trained before it",
                                                    "after: model retrained on it"])
        return (tabulate(facts, tablefmt="simple") + "\n\nLive RMSE of the serving champion (mean of daily "
                "scores, days scored):\n" + rmse)


def _quiet_terminal() -> None:
    """Library chatter off the terminal: the demo prints its own account of each step."""
    warnings.filterwarnings("ignore")
    for name in ("mlflow", "dagster", "alembic"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _get(config, dotted: str):
    node = config
    for part in dotted.split("."):
        node = node[part] if isinstance(node, dict) else getattr(node, part)
    return node


def _same(value, text: str) -> bool:
    """Is the setting ``value`` already what the demo's ``text`` (JSON for lists and maps) says?"""
    try:
        return value == json.loads(text)
    except ValueError:
        return str(value) == text


def _mean(values) -> str:
    values = [float(v) for v in values]
    return f"{statistics.fmean(values):.2f} ({len(values)} d)" if values else "-"


def run_demo(days: int = 28, warmup_days: int = 28) -> int:
    """Replay ``days`` new days (after a ``warmup_days`` warm-up on a fresh platform); print the tally."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    started = time.perf_counter()
    instance = dg.DagsterInstance.get()
    demo = Demo(instance, say=tqdm.write)
    _quiet_terminal()
    print(f"source: {demo.source.spec}\nDagster home: {instance.root_directory}\nlake: {demo.lake.root}")
    latest = latest_observed_day(demo.lake)
    if latest is None or not demo.lake.days(FEATURE_STATS):
        latest = demo.setup(warmup_days)
    last = demo.source.last_day()
    replay = [latest + timedelta(days=i + 1) for i in range(days)]
    replay = [d for d in replay if last is None or d <= last]
    if not replay:
        print(f"nothing to replay: the source ends on {last}")
        return 1
    demo.replay(replay)
    print("\n" + demo.summary(time.perf_counter() - started))
    print("\nOpen the UI on this instance with `make dev`; list the runs with `aqi-retrain history`.")
    return 0
