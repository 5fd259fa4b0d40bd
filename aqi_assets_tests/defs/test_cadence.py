"""Schedules follow the configuration in force on every tick: a changed cron applies without a reload."""

from __future__ import annotations

from datetime import datetime, timezone

import dagster as dg

from aqi_assets.core.configuration.store import next_record, save_record
from aqi_assets.core.data.lake import Lake
from aqi_assets.defs.monitoring.report import weekly_retraining_report
from aqi_assets.defs.monitoring.schedule import adapt_retraining_schedule
from aqi_assets.defs.resources import LakeResource


def tick(schedule, lake: Lake, at: datetime):
    context = dg.build_schedule_context(scheduled_execution_time=at.replace(tzinfo=timezone.utc),
                                        resources={"lake": LakeResource(root=str(lake.root))})
    return schedule.evaluate_tick(context)


def test_weekly_report_fires_at_the_configured_time_and_follows_a_change(tmp_path):
    lake = Lake(tmp_path)
    monday = datetime(2024, 5, 6, 6, 0)
    fired = tick(weekly_retraining_report, lake, monday)
    assert [r.run_key for r in fired.run_requests] == ["weekly_retraining_report/2024-05-06T06:00"]
    assert tick(weekly_retraining_report, lake, datetime(2024, 5, 6, 6, 5)).run_requests == []
    save_record(lake, next_record(lake, {"operations.report_cron": "30 7 * * 1"}))  # applies from the next tick
    skipped = tick(weekly_retraining_report, lake, monday)
    assert skipped.run_requests == []
    assert skipped.skip_message == "next run at 2024-05-06 07:30 UTC (operations.report_cron = '30 7 * * 1')"
    assert len(tick(weekly_retraining_report, lake, datetime(2024, 5, 6, 7, 30)).run_requests) == 1


def test_adaptation_runs_daily_at_the_configured_hour(tmp_path):
    lake = Lake(tmp_path)
    assert len(tick(adapt_retraining_schedule, lake, datetime(2024, 5, 7, 3, 0)).run_requests) == 1
    assert tick(adapt_retraining_schedule, lake, datetime(2024, 5, 7, 4, 0)).run_requests == []
    save_record(lake, next_record(lake, {"schedule.adapt_cron": "@hourly"}))
    assert len(tick(adapt_retraining_schedule, lake, datetime(2024, 5, 7, 4, 0)).run_requests) == 1


def test_an_invalid_cron_is_refused_naming_the_field_and_nothing_is_recorded(tmp_path):
    import pytest

    from aqi_assets.core.configuration.config import ConfigError

    lake = Lake(tmp_path)
    with pytest.raises(ConfigError, match=r"operations.report_cron: 'every monday' is not a cron expression"):
        next_record(lake, {"operations.report_cron": "every monday"})
    with pytest.raises(ConfigError, match=r"schedule.adapt_cron: '61 \* \* \* \*' is not a cron expression"):
        next_record(lake, {"schedule.adapt_cron": "61 * * * *"})
    assert lake.read_json("retraining_config") is None
