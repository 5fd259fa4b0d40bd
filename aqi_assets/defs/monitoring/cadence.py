"""Schedules whose time is a setting: a frequent Dagster schedule that fires when the configured cron does.

The cron is read from the configuration in force on every tick, so a change of
``schedule.adapt_cron`` or ``operations.report_cron`` applies from the next tick, without
reloading the code location. Ticks come every ``TICK_MINUTES`` minutes (UTC); a configured time
runs at the first tick at or after it.
"""

from collections.abc import Callable
from datetime import timedelta

import dagster as dg

from aqi_assets.core.configuration.config import RetrainingConfig
from aqi_assets.core.configuration.store import current_config
from aqi_assets.core.configuration.cron import next_tick, ticks_between
from aqi_assets.defs.resources import LakeResource

TICK_MINUTES = 5
#: Every configured-cron schedule: name -> (setting, the cron of a configuration).
CONFIGURED_CRONS: dict[str, tuple[str, Callable[[RetrainingConfig], str]]] = {}


def configured_cron_schedule(name: str, job, setting: str, cron_of: Callable[[RetrainingConfig], str],
                             description: str) -> dg.ScheduleDefinition:
    """A schedule of ``job`` that runs when the cron at ``setting`` (``cron_of(config)``) fires."""
    CONFIGURED_CRONS[name] = (setting, cron_of)

    @dg.schedule(name=name, job=job, cron_schedule=f"*/{TICK_MINUTES} * * * *",
                 default_status=dg.DefaultScheduleStatus.RUNNING, description=description)
    def _schedule(context: dg.ScheduleEvaluationContext, lake: LakeResource):
        cron = cron_of(current_config(lake.get()))
        now = context.scheduled_execution_time.replace(tzinfo=None)
        due = ticks_between(cron, now - timedelta(minutes=TICK_MINUTES), now)
        if not due:
            return dg.SkipReason(f"next run at {next_tick(cron, now):%Y-%m-%d %H:%M} UTC ({setting} = '{cron}')")
        return dg.RunRequest(run_key=f"{name}/{due[-1]:%Y-%m-%dT%H:%M}",
                             tags={"aqi/scheduled_for": f"{due[-1]:%Y-%m-%dT%H:%M}", "aqi/cron": cron})

    return _schedule
