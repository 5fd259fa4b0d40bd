"""The policy part of ``make bench-triggers``: the deployed retraining policy beside the alternatives.

Replays Beijing 2015-03-01..2017-02-27 day by day (the year before trains the first model) with
XGBoost on a 365-day window forecasting next-hour PM2.5 (``backtest.REPLAY_XGBOOST``), under
``deployed`` (the adaptive schedule ∪ the performance rule ∪ drift, as the platform runs),
``schedule``, ``default`` (performance alone), ``drift``, performance ∪ drift with and without a
30- or 60-day backstop, ``never`` and fixed schedules, on the fast backtest (features computed
once, fits shared by training day). ``AQI_BACKTEST_CACHE=<dir>`` keeps fitted models for reruns.
``--period dev`` replays 2014-03-01..2015-02-28 instead, the year the schedule's default (a
60-day backstop adapted within 30..90 days) was chosen on.

The goal it is judged against (``deployed_goal``): the deployed policy's RMSE no worse than the
best fixed schedule's, with at most 30 % of that schedule's retrains.
"""

from __future__ import annotations

import os
import time
from datetime import date, timedelta

from aqi_assets.core.backtest.replay import BacktestSettings, backtest_source, rmse_change_interval
from aqi_assets.core.backtest.policies import policies_from_names
from aqi_assets.core.configuration.config import RetrainingConfig
from aqi_assets.core.data.sources.base import ObservationSource
from bench.common import StationSubset, machine_info

POLICIES = ["never", "fixed_7", "fixed_14", "fixed_30", "default", "drift", "default+drift",
            "default+drift:every=30", "default+drift:every=60", "schedule", "deployed"]
#: On the development year also the alternative the schedule's default was chosen against: a
#: 14-day backstop (on Beijing the adaptive 14-day schedule stays at 14 days).
DEV_POLICIES = [*POLICIES[:-2], "default+drift:every=14", *POLICIES[-2:]]
#: The scored replay, and the year before it (where the schedule's default was chosen).
PERIODS: dict[str, tuple[date, date]] = {"scored": (date(2015, 3, 1), date(2017, 2, 27)),
                                         "dev": (date(2014, 3, 1), date(2015, 2, 28))}
#: The deployed policy may use at most this share of the best fixed schedule's retrains.
GOAL_RETRAIN_SHARE = 0.30


def deployed_goal(summaries: dict, scores: dict) -> dict:
    """Is ``deployed``'s RMSE no worse than the best fixed schedule's, with ≤ 30 % of its retrains?

    ``summaries``: ``{policy: {"rmse", "retrains", ...}}``; ``scores``: ``{policy: daily scores}``
    (for the 95 % block-bootstrap interval of the RMSE change, context only: the goal reads the
    pooled RMSEs).
    """
    fixed = {name: s for name, s in summaries.items() if name.startswith("fixed_")}
    best = min(fixed, key=lambda name: fixed[name]["rmse"])
    deployed = summaries["deployed"]
    share = deployed["retrains"] / fixed[best]["retrains"] if fixed[best]["retrains"] else float("inf")
    change = rmse_change_interval(scores["deployed"], scores[best])
    return {
        "best_fixed": best, "best_fixed_rmse": fixed[best]["rmse"], "best_fixed_retrains": fixed[best]["retrains"],
        "deployed_rmse": deployed["rmse"], "deployed_retrains": deployed["retrains"],
        "retrain_share": round(share, 3), "rmse_change": [round(v, 4) for v in change],
        "rmse_no_worse": bool(deployed["rmse"] <= fixed[best]["rmse"]),
        "retrains_within_share": bool(share <= GOAL_RETRAIN_SHARE),
        "met": bool(deployed["rmse"] <= fixed[best]["rmse"] and share <= GOAL_RETRAIN_SHARE),
    }


def run_policies(source: ObservationSource, period: str | None = "scored", config: RetrainingConfig | None = None
                 ) -> tuple[dict, dict, dict]:
    """``({policy: {rmse, retrains, train_cpu_seconds, ...}}, {"performance", "schedule"} triggers/year,
    {"wall_seconds", "fits", "fit_cpu_seconds", "load_avg_before", "load_avg_after", "goal"})``.

    ``period``: one of ``PERIODS`` (Beijing), or ``None`` for another network: every day it holds
    after the initial model's training window. ``config``: the settings the triggered policies
    (``deployed`` among them) and the training use (default: the shipped ones). ``source`` is the
    one the drift replay read (a ``StationSubset`` for ``--stations``), so its files are parsed once.
    """
    config = config or RetrainingConfig()
    if period is None:
        last = source.last_day()
        if last is None:
            raise ValueError(f"the source {source.spec!r} has no last day to replay to")
        start, end = source.first_day() + timedelta(days=config.training.window_days), last
        if start > end:
            raise ValueError(f"the source {source.spec!r} holds {source.first_day()}..{last}: less than the "
                             f"{config.training.window_days}-day training window the replay needs first")
    else:
        start, end = PERIODS[period]
    settings = BacktestSettings(start=start, end=end, training=config.training)
    before = machine_info()
    clock = time.perf_counter()
    names = DEV_POLICIES if period == "dev" else POLICIES
    backtest = backtest_source(source, policies_from_names(names, config), settings,
                               progress=lambda done, total, message: print(f"  {done}/{total} {message}", flush=True),
                               cache_dir=os.environ.get("AQI_BACKTEST_CACHE") or None)
    wall = time.perf_counter() - clock
    after = machine_info()
    summaries = backtest.summaries()
    deployed = backtest.results["deployed"]
    years = len(settings.days) / 365.25
    per_year = {kind: round(sum(kind in r.trigger_types for r in deployed.retrains) / years, 2)
                for kind in ("performance", "schedule", "drift")}
    summaries["deployed"]["retrains_by_trigger"] = {
        kind: sum(kind in r.trigger_types for r in deployed.retrains) for kind in ("performance", "schedule", "drift")}
    run = {"start": start.isoformat(), "end": end.isoformat(),
           "stations": sorted(source.keep) if isinstance(source, StationSubset) else None,
           "wall_seconds": round(wall, 1), "fits": backtest.fits, "fit_cpu_seconds": round(backtest.fit_cpu_seconds, 1),
           "load_avg_before": before["load_avg_1m"], "load_avg_after": after["load_avg_1m"], "cpus": before["cpus"],
           "goal": deployed_goal(summaries, {name: r.scores for name, r in backtest.results.items()})}
    return summaries, {"performance": per_year["performance"], "schedule": per_year["schedule"],
                       "drift_in_deployed_policy": per_year["drift"]}, run
