"""The weekly report's figures, trend and recommendations from plain run records and scores."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from aqi_assets.core.monitoring.report import RetrainingRun, build_report

LAST = date(2024, 5, 26)


def scores(model: str, this_week: float, week_before: float, persistence: float = 12.0) -> list[dict]:
    rows = []
    for i in range(14):
        day = LAST - timedelta(days=13 - i)
        rows.append({"date": pd.Timestamp(day), "model": model, "rmse": week_before if i < 7 else this_week,
                     "persistence_rmse": persistence, "within_20": 0.7, "champion_version": "3"})
    return rows


def run(model: str, trigger: str, succeeded: bool, seconds: float, promoted=False, gates=()) -> RetrainingRun:
    return RetrainingRun(run_id=f"{model}-{trigger}-{seconds}", model=model, trigger_type=trigger, reason="why",
                         succeeded=succeeded, started=1_700_000_000 + seconds, seconds=seconds,
                         gates_failed=tuple(gates), promoted=promoted)


def test_figures_trend_and_advice():
    runs = [
        run("xgboost", "drift", True, 30, promoted=True),
        run("lstm", "drift", True, 10, gates=["accuracy_within_limit"]),  # a gate kept the champion: a success
        run("gnn", "drift", True, 20, gates=["accuracy_within_limit"]),
        run("xgboost", "schedule", False, 40),
    ]
    frame = pd.DataFrame(scores("xgboost", 10.0, 9.0) + scores("lstm", 13.2, 10.0) + scores("gnn", 11.0, 11.0))
    report = build_report(runs, frame, LAST, {"trigger_checks": 200, "failed_trigger_checks": 2, "uptime_hours": 71.5})
    f = report.figures
    assert (f["retrainings"], f["succeeded"], f["failed"], f["promotions"], f["gate_stops"]) == (4, 3, 1, 1, 2)
    assert f["success_rate"] == 0.75 and f["promotion_rate"] == 0.25 and f["average_seconds"] == 25
    assert f["trigger_check_success_rate"] == 0.99 and f["uptime_hours"] == 71.5
    assert f["triggers"] == {"drift": 3, "schedule": 1}
    trend = report.trend.set_index("model")
    assert trend.loc["lstm", "RMSE this week"] == 13.2 and round(trend.loc["lstm", "change"], 2) == 0.32
    advice = "\n".join(report.recommendations)
    assert "1 run(s) failed before their gates" in advice and "xgboost-schedule-40"[:8] in advice
    assert "`accuracy_within_limit` stopped 2 candidates" in advice
    assert "lstm: the champion is worse than persistence" in advice  # 13.2 > 12.0
    assert "xgboost: live RMSE rose" not in advice  # +11 %, but it was retrained this week
    text = report.markdown("PLOT")
    assert "retrainings: **4** (3 succeeded, 1 failed: success rate 75%)" in text
    assert "a gate kept the champion 2 time(s) (an outcome, not a failure)" in text
    assert "platform: trigger checks 99% without error (200 sensor ticks); daemon up 71.5 h" in text
    assert "## Live RMSE" in text and "PLOT" in text
    assert report.plot_png()[:4] == b"\x89PNG"


def test_quiet_week_needs_no_action():
    frame = pd.DataFrame(scores("xgboost", 9.0, 9.0))
    report = build_report([], frame, LAST)
    assert report.figures["retrainings"] == 0 and report.figures["success_rate"] is None
    assert report.recommendations == ["No action needed: retrainings succeeded and live error is stable."]
    assert "n/a" in report.markdown()


def test_rising_error_without_a_retraining_is_called_out():
    frame = pd.DataFrame(scores("gnn", 11.5, 10.0, persistence=14.0))
    report = build_report([], frame, LAST)
    assert any(r.startswith("gnn: live RMSE rose 15%") and "aqi-retrain trigger --model gnn" in r
               for r in report.recommendations)
