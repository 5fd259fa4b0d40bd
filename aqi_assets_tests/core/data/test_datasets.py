"""The training window: days that passed their gates, ending on the newest such day."""

from __future__ import annotations

from datetime import date, timedelta

from aqi_assets.core.data.datasets import QUALITY, latest_fit_day, training_window
from aqi_assets.core.data.lake import Lake
from aqi_assets_tests.factories import canonical_rows

FIRST = date(2024, 3, 1)


def store(lake: Lake, days: int, failed: set[int]) -> None:
    frame = canonical_rows(start=FIRST, days=days)
    for i in range(days):
        day = FIRST + timedelta(days=i)
        lake.write_frame("observations", day.isoformat(), frame[frame["timestamp"].dt.date == day])
        lake.write_json(QUALITY, day.isoformat(), {"checks": [
            {"name": "values_physically_possible", "blocking": True, "passed": i not in failed}]})


def test_a_failed_newest_day_never_ends_the_window(tmp_path):
    lake = Lake(tmp_path)
    store(lake, days=6, failed={3, 5})  # the newest day failed its gates
    assert latest_fit_day(lake) == FIRST + timedelta(days=4)
    frame, report = training_window(lake, window_days=4)
    assert report.end == FIRST + timedelta(days=4) and report.start == FIRST + timedelta(days=1)
    assert report.days_used == [FIRST + timedelta(days=d) for d in (1, 2, 4)]
    assert list(report.days_excluded) == [FIRST + timedelta(days=3)]
    assert frame["timestamp"].max().date() == FIRST + timedelta(days=4)


def test_no_day_that_passed_means_no_window(tmp_path):
    lake = Lake(tmp_path)
    store(lake, days=2, failed={0, 1})
    assert latest_fit_day(lake) is None
    frame, report = training_window(lake, window_days=7)
    assert frame.empty and report.end is None
