"""The weekly retraining report: activity, outcomes, live-performance trend and recommendations.

Dagster-free: it takes plain records of the week's retraining runs (``RetrainingRun``) and the
stored daily live scores (``model_performance`` rows) and returns Markdown, a plot and the
figures behind them.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta

import pandas as pd

from aqi_assets.core.configuration.config import MODEL_NAMES
from aqi_assets.core.plots import figure_png, plt

#: A week-over-week rise of a model's mean live RMSE above this share is called out.
RMSE_RISE_WARNING = 0.10
#: Below this retraining success rate the failures need a look.
SUCCESS_RATE_WARNING = 0.8


@dataclass(frozen=True)
class RetrainingRun:
    """One retraining run as the report counts it."""

    run_id: str
    model: str
    trigger_type: str
    reason: str
    succeeded: bool
    started: float  # unix seconds
    seconds: float
    gates_failed: tuple[str, ...] = ()
    promoted: bool = False


@dataclass
class WeeklyReport:
    """The figures of one week (``first``..``last`` inclusive) and their Markdown rendering."""

    first: date
    last: date
    runs: list[RetrainingRun]
    trend: pd.DataFrame  # model, this_week_rmse, previous_week_rmse, change, persistence_rmse
    daily: pd.DataFrame  # date × model mean live RMSE over the plotted weeks
    figures: dict = field(default_factory=dict)
    recommendations: list[str] = field(default_factory=list)

    def markdown(self, plot_markdown: str = "") -> str:
        f = self.figures
        lines = [
            f"# Retraining report {self.first} .. {self.last}",
            "",
            f"- retrainings: **{f['retrainings']}** ({f['succeeded']} succeeded, {f['failed']} failed: success rate "
            f"{_pct(f['success_rate'])}), average duration {_secs(f['average_seconds'])}",
            f"- promotions: **{f['promotions']}** (promotion rate {_pct(f['promotion_rate'])}); "
            f"a gate kept the champion {f['gate_stops']} time(s) (an outcome, not a failure)",
            "- triggers by type: " + (", ".join(f"{k} {v}" for k, v in sorted(f["triggers"].items())) or "none"),
            f"- platform: trigger checks {_pct(f['trigger_check_success_rate'])} without error "
            f"({f['trigger_checks']} sensor ticks); daemon up "
            + ("n/a" if f["uptime_hours"] is None else f"{f['uptime_hours']:.1f} h"),
            "",
            "## Per model",
            "",
            self.trend.to_markdown(index=False, floatfmt=".2f") if len(self.trend) else "no live scores this week",
            "",
        ]
        if plot_markdown:
            lines += ["## Live RMSE", "", plot_markdown, ""]
        lines += ["## Recommendations", ""] + [f"- {r}" for r in self.recommendations]
        if self.runs:
            lines += ["", "## Runs", "", _runs_table(self.runs)]
        return "\n".join(lines) + "\n"

    def plot_png(self) -> bytes | None:
        """Daily mean live RMSE per model over the plotted weeks, promotions marked."""
        if not len(self.daily):
            return None
        fig, ax = plt.subplots(figsize=(7, 2.8))
        for model in self.daily.columns:
            series = self.daily[model].dropna()
            line, = ax.plot(series.index, series.to_numpy(), lw=1.3, label=model)
            for run in self.runs:
                if run.model == model and run.promoted:
                    ax.axvline(pd.Timestamp(run.started, unit="s").normalize(), color=line.get_color(),
                               ls=":", lw=1)
        ax.axvspan(pd.Timestamp(self.first), pd.Timestamp(self.last) + pd.Timedelta(days=1), color="grey",
                   alpha=0.12, label="this week")
        ax.set_ylabel("RMSE", fontsize=8)
        ax.set_title("Live RMSE of the serving champion (dotted: promotions)", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
        fig.autofmt_xdate()
        return figure_png(fig)


def build_report(runs: list[RetrainingRun], scores: pd.DataFrame, last: date, platform: dict | None = None,
                 weeks_plotted: int = 8) -> WeeklyReport:
    """The report of the week ending ``last`` from that week's ``runs`` and the stored daily scores.

    ``platform``: ``trigger_checks``, ``failed_trigger_checks`` (sensor ticks of the week) and
    ``uptime_hours`` (since the daemon started), when known.
    """
    platform = platform or {}
    checks, failed_checks = platform.get("trigger_checks", 0), platform.get("failed_trigger_checks", 0)
    first = last - timedelta(days=6)
    retrainings = len(runs)
    succeeded = sum(r.succeeded for r in runs)
    promotions = sum(r.promoted for r in runs)
    figures = {
        "retrainings": retrainings,
        "succeeded": succeeded,
        "failed": retrainings - succeeded,
        "success_rate": succeeded / retrainings if retrainings else None,
        "average_seconds": statistics.fmean(r.seconds for r in runs) if runs else None,
        "promotions": promotions,
        "promotion_rate": promotions / retrainings if retrainings else None,
        "gate_stops": sum(bool(r.gates_failed) for r in runs),
        "triggers": dict(Counter(r.trigger_type for r in runs)),
        "trigger_checks": checks,
        "trigger_check_success_rate": (checks - failed_checks) / checks if checks else None,
        "uptime_hours": platform.get("uptime_hours"),
    }
    trend, daily = _trend(scores, first, last, weeks_plotted)
    report = WeeklyReport(first=first, last=last, runs=runs, trend=trend, daily=daily, figures=figures)
    report.recommendations = recommendations(report)
    return report


def _trend(scores: pd.DataFrame, first: date, last: date, weeks: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    if scores is None or not len(scores):
        return pd.DataFrame(), pd.DataFrame()
    days = pd.to_datetime(scores["date"]).dt.date
    plotted = scores[(days > last - timedelta(days=7 * weeks)) & (days <= last)]
    daily = plotted.pivot_table(index="date", columns="model", values="rmse", aggfunc="mean").sort_index()
    rows = []
    for model in MODEL_NAMES:
        mine = scores[scores["model"] == model]
        mine_days = pd.to_datetime(mine["date"]).dt.date
        week = mine[(mine_days >= first) & (mine_days <= last)]
        before = mine[(mine_days >= first - timedelta(days=7)) & (mine_days < first)]
        if not len(week) and not len(before):
            continue
        now, then = _mean_or_none(week["rmse"]), _mean_or_none(before["rmse"])
        rows.append({
            "model": model,
            "champion": str(week["champion_version"].iloc[-1]) if len(week) else "-",
            "RMSE this week": now,
            "RMSE week before": then,
            "change": (now / then - 1) if now is not None and then else None,
            "persistence RMSE": _mean_or_none(week["persistence_rmse"]),
            "within 20 %": _mean_or_none(week["within_20"]),
        })
    return pd.DataFrame(rows), daily


def recommendations(report: WeeklyReport) -> list[str]:
    """Plain-language advice from the week's figures; at least one line, always."""
    f, advice = report.figures, []
    crashed = [r for r in report.runs if not r.succeeded and not r.gates_failed]
    if crashed and f["success_rate"] < SUCCESS_RATE_WARNING:
        advice.append(f"Retraining success rate is {_pct(f['success_rate'])}: {len(crashed)} run(s) failed before "
                      "their gates (data, MLflow or resources): " + ", ".join(r.run_id[:8] for r in crashed) + ".")
    stopped = Counter(g for r in report.runs for g in r.gates_failed)
    for gate, count in stopped.most_common():
        if count >= 2:
            advice.append(f"`{gate}` stopped {count} candidates: check the training window and data quality, "
                          "or review the gate threshold in retraining_config.")
    for row in report.trend.to_dict("records") if len(report.trend) else []:
        change, model = row.get("change"), row["model"]
        retrained = any(r.model == model for r in report.runs)
        if change is not None and change > RMSE_RISE_WARNING and not retrained:
            advice.append(f"{model}: live RMSE rose {_pct(change)} week over week without a retraining; "
                          f"consider `aqi-retrain trigger --model {model}`.")
        persistence = row.get("persistence RMSE")
        if row.get("RMSE this week") is not None and persistence and row["RMSE this week"] > persistence:
            advice.append(f"{model}: the champion is worse than persistence this week "
                          f"({row['RMSE this week']:.2f} vs {persistence:.2f}); a rollback or retraining is due.")
    if f["retrainings"] and not f["promotions"]:
        advice.append("No retraining was promoted: triggers may be too sensitive for the data, or candidates "
                      "too weak; compare the triggers' reasons with the gate results.")
    if not advice:
        advice.append("No action needed: retrainings succeeded and live error is stable.")
    return advice


def _runs_table(runs: list[RetrainingRun]) -> str:
    rows = [{
        "started": pd.Timestamp(r.started, unit="s").strftime("%Y-%m-%d %H:%M"),
        "model": r.model, "trigger": r.trigger_type, "reason": r.reason[:60],
        "outcome": "promoted" if r.promoted else ("kept by gate: " + ", ".join(r.gates_failed) if r.gates_failed
                                                  else ("succeeded" if r.succeeded else "failed")),
        "seconds": round(r.seconds, 1), "run": r.run_id[:8],
    } for r in sorted(runs, key=lambda r: r.started)]
    return pd.DataFrame(rows).to_markdown(index=False)


def _mean_or_none(values) -> float | None:
    values = [float(v) for v in values if pd.notna(v)]
    return statistics.fmean(values) if values else None


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _secs(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} s"
