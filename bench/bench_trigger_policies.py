"""The policy part of ``make bench-triggers``: the deployed retraining policy beside the alternatives.

Replays Beijing 2015-03-01..2017-02-27 day by day (the year before trains the first model) with
XGBoost on a 365-day window forecasting next-hour PM2.5 (``backtest.REPLAY_XGBOOST``), under
``deployed`` (the adaptive schedule ∪ the performance rule ∪ drift, as the platform runs),
``schedule``, ``default`` (performance alone), ``drift``, ``never`` and fixed schedules. Slow
(tens of minutes on 2 cores); ``AQI_BACKTEST_CACHE=<dir>`` keeps fitted models for reruns.
"""

from __future__ import annotations

import os
from datetime import date

from aqi_assets.core.backtest.replay import BacktestSettings, backtest_source
from aqi_assets.core.backtest.policies import policies_from_names
from aqi_assets.core.data.sources import source_from_spec

POLICIES = ["never", "fixed_7", "fixed_14", "fixed_30", "default", "drift", "schedule", "deployed"]
START, END = date(2015, 3, 1), date(2017, 2, 27)


def run_policies(data: str) -> tuple[dict, dict]:
    """``({policy: {rmse, retrains, train_cpu_seconds, ...}}, {"performance", "schedule"} triggers/year)``."""
    source = source_from_spec(f"prsa:{data}")
    settings = BacktestSettings(start=START, end=END)
    backtest = backtest_source(source, policies_from_names(POLICIES), settings,
                               progress=lambda done, total, message: print(f"  {done}/{total} {message}", flush=True),
                               cache_dir=os.environ.get("AQI_BACKTEST_CACHE") or None)
    summaries = backtest.summaries()
    deployed = backtest.results["deployed"]
    years = len(settings.days) / 365.25
    per_year = {kind: round(sum(kind in r.trigger_types for r in deployed.retrains) / years, 2)
                for kind in ("performance", "schedule", "drift")}
    summaries["deployed"]["retrains_by_trigger"] = {
        kind: sum(kind in r.trigger_types for r in deployed.retrains) for kind in ("performance", "schedule", "drift")}
    return summaries, {"performance": per_year["performance"], "schedule": per_year["schedule"],
                       "drift_in_deployed_policy": per_year["drift"]}
