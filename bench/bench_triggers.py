"""Benchmark: do the retraining triggers mean something on real data? (``make bench-triggers``)

On the real Beijing data (12 stations, hourly), every day 2015-03-01..2017-02-28:

- **clean**: the drift sensor replayed day by day as deployed — ``drift.check_drift`` with its
  state (cooldown from the last requested trigger, references restarted only for the
  station-features a trigger concerned), one check per day of sketches. Triggers per year, the
  station-features that drove them (the first named pair of each trigger), how many pairs a
  clean day flags, and which references the tests used.
- **faults**: ``faults.BENCHMARK_FAULTS`` (PM2.5 step × 1.3, wind speed × 0.5, PM10 within-day
  std × √2, a pollutant stuck for 24–72 h; then a pollutant stuck at 0 for 24–72 h, a dead
  sensor, and one silent for 48–120 h) injected at ``CASES`` seeded (station, day) pairs
  each. A case is *detected* when, within ``DETECT_DAYS`` days of its start, the replayed
  sensor (starting from the clean replay's state the day before) flags the faulty
  station-feature on a day the clean data did not flag it; ``delay`` is days after the start
  (0 = the fault's first day). ``named_first``: on that day the faulty pair was the report's
  first row (``named_instead``: the row that was). ``--cases N`` replays N cases per kind (twenty
  leave a count ±2 from luck; a hundred tell close settings apart) and ``--kinds a,b`` only those
  kinds, into files of their own; a case with nothing to inject (stuck where the sensor has no
  reading) is set aside with the reason (``not_injected``).
- **policies** (``--policies``; minutes on 2 cores, cached with ``AQI_BACKTEST_CACHE``): the
  backtest of the policy that ships (adaptive schedule ∪ performance ∪ drift) beside never,
  fixed schedules and each trigger alone, XGBoost next-hour PM2.5 on a 365-day window, and its
  goal: the deployed policy's RMSE no worse than the best fixed schedule's with at most 30 % of
  its retrains (``policy_run.goal``). With ``--set`` the policies replay those settings (e.g. the
  seed's schedule: ``--set schedule.min_days=3 --set schedule.max_days=30``); with ``--stations``
  those stations alone; with ``--source`` every day the network holds after the first model's
  365-day window. Without the flag the policies of the committed ``triggers.json`` are kept.

Daily sketches are computed once (one ``compute_feature_stats`` call over every station-day) and
every check reads only the days it needs; a fault case sketches its days again (every station:
the others' residuals against their peers include the faulty one). Writes
``bench/results/triggers.json`` and ``triggers.md``. ``--rule`` replays another drift rule (e.g.
``seed``) and writes ``triggers_<rule>.json`` / ``.md`` instead.

``--sweep`` replays clean + faults at each of ``OPERATING_POINTS`` (drift settings that replace
the shipped ones) and writes the trade-off between clean-data triggers and alerts and fault
detection to ``triggers_sweep.json`` / ``.md``: what a more sensitive setting buys and costs.

Your own network: ``--source <AQI_SOURCE spec>`` (``csv:<dir>``, ``prsa:<dir>``, ...) replays
every day it holds after a 45-day warm-up, ``--stations a,b,c`` a subset of any network,
``--target`` the pollutant drift retrains on, and ``--set drift.cusum_k=0.5`` (repeatable) your
own thresholds. A fault kind whose pollutant the network does not
measure is injected into the target (steps) or another measured pollutant (spread); one whose
weather column is missing is skipped, and the report says so.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from aqi_assets.core.configuration.config import DriftSettings, RetrainingConfig  # noqa: E402
from aqi_assets.core.monitoring.drift import DriftReport, DriftState, check_drift  # noqa: E402
from aqi_assets.core.data.faults import BENCHMARK_FAULTS, Fault, seeded_faults  # noqa: E402
from aqi_assets.core.data import feature_stats, schema  # noqa: E402
from aqi_assets.core.data.feature_stats import compute_feature_stats  # noqa: E402
from aqi_assets.core.data.schema import POLLUTANTS, STATION, TIMESTAMP  # noqa: E402
from bench.common import StationSubset  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
BEIJING = Path(os.environ.get("AQI_BEIJING_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "beijing"))
FIRST, LAST = date(2015, 3, 1), date(2017, 2, 28)
DATA_FIRST = date(2013, 3, 1)
DEFAULT_CASES = 20
CASES = DEFAULT_CASES  # ``--cases``
#: ``--peer-min-others``: other stations an hour's residual needs in the sketches.
PEER_MIN_OTHERS = feature_stats.PEER_MIN_OTHERS
#: ``--residual-floor-share``: the scale of the sketches' residuals against the peers.
RESIDUAL_FLOOR_SHARE = schema.RESIDUAL_FLOOR_SHARE
#: ``--kinds``: the fault kinds replayed (``None``: every one of ``BENCHMARK_FAULTS``).
KINDS: list[str] | None = None
DETECT_DAYS = 7
SEED = 2015
#: ``--source``: days before the replay starts, so the first checks have a reference.
WARM_UP_DAYS = 45
#: ``--sweep``: drift settings replayed beside the shipped ones (each replaces only what it names).
OPERATING_POINTS: list[dict] = [
    {},
    # the previous default: one chart (k 1, clip 6) for every feature, findings from 8, retraining from 10
    {"cusum_k": 1.0, "cusum_h": 8.0, "cusum_clip": 6.0, "cusum_retrain_h": 10.0, "retrain_features_cusum_k": None},
    {"cusum_retrain_h": 10.0},
    {"cusum_retrain_h": 12.0},
    {"cusum_k": 0.5},
    {"retrain_features_cusum_k": None},  # the previous default: one allowance for every feature
    {"retrain_features_cusum_k": 0.6},
    {"cusum_h": 5.0},
    {"cusum_clip": 4.0},
    {"reference_days": 60},
]
#: ``--period``: the scored years, and the earlier ones the thresholds were chosen on.
PERIODS: dict[str, tuple[date, date]] = {"scored": (date(2015, 3, 1), date(2017, 2, 28)),
                                         "dev": (date(2013, 4, 15), date(2015, 2, 28))}


# --- sketches --------------------------------------------------------------------------------
def sketch_station_days(frame: pd.DataFrame) -> pd.DataFrame:
    """``feature_stats`` of every (station, day) of ``frame`` in one call (the station label carries the day)."""
    tagged = frame.copy()
    tagged[STATION] = tagged[STATION].astype(str) + "|" + tagged[TIMESTAMP].dt.date.astype(str)
    stats = compute_feature_stats(tagged, FIRST, peer_min_others=PEER_MIN_OTHERS,
                                  residual_floor_share=RESIDUAL_FLOOR_SHARE)
    station_day = stats[STATION].str.split("|", expand=True)
    return stats.assign(**{STATION: station_day[0], "date": pd.to_datetime(station_day[1])})


@dataclass
class Sketches:
    """Daily sketches by day; ``reader`` serves the days a check asks for, with faulty days swapped in."""

    by_day: dict[date, pd.DataFrame]
    overrides: dict[date, pd.DataFrame] = field(default_factory=dict)

    @property
    def available(self) -> list[date]:
        return sorted(self.by_day)

    def read(self, days) -> pd.DataFrame:
        parts = [self.overrides.get(d, self.by_day.get(d)) for d in days]
        return pd.concat([p for p in parts if p is not None], ignore_index=True)

    def with_fault(self, frame: pd.DataFrame, fault: Fault, days: list[date]) -> Sketches:
        """The sketches with ``fault`` injected into its station's rows on ``days`` (every station
        of those days is sketched again: the others' residuals against their peers include it)."""
        lo, hi = pd.Timestamp(days[0]), pd.Timestamp(days[-1] + timedelta(days=1))
        faulty = sketch_station_days(fault.apply(frame[(frame[TIMESTAMP] >= lo) & (frame[TIMESTAMP] < hi)]))
        overrides = {day: part.reset_index(drop=True) for day, part in faulty.groupby(faulty["date"].dt.date)}
        return Sketches(self.by_day, overrides)


def load(source, first: date = DATA_FIRST) -> tuple[pd.DataFrame, Sketches]:
    """Every station-day ``source`` holds from ``first`` to ``LAST``, sketched."""
    frame = source.read_range(first, LAST)
    frame[STATION] = frame[STATION].astype(str)
    frame[TIMESTAMP] = pd.to_datetime(frame[TIMESTAMP])
    stats = sketch_station_days(frame)
    by_day = {day: part.reset_index(drop=True) for day, part in stats.groupby(stats["date"].dt.date)}
    return frame, Sketches(by_day)


def source_days(source, spec: str) -> tuple[date, date]:
    """The days a source's replay covers: all it holds after ``WARM_UP_DAYS`` (references need a past)."""
    first, last = source.first_day(), source.last_day()
    if last is None:
        raise SystemExit(f"--source {spec}: the source has no last day; give it an end (e.g. simulated:end=...)")
    if (last - first).days < WARM_UP_DAYS + 2 * DETECT_DAYS:
        raise SystemExit(f"--source {spec}: {first}..{last} is too short; the replay needs more than "
                         f"{WARM_UP_DAYS + 2 * DETECT_DAYS} days")
    return first + timedelta(days=WARM_UP_DAYS), last


# --- the drift sensor replayed -----------------------------------------------------------------
@dataclass
class DayCheck:
    day: date
    flagged: list[tuple[str, str]]  # pairs flagged, in report order
    retrain: list[tuple[str, str]]  # the flagged pairs that retrain (the others alert)
    triggered: bool
    severity: str | None
    references: dict
    #: broken sensors the sensor pushes a ``sensor_error`` alert for that day: (station, feature,
    #: "flat line" or "silent")
    broken: list[tuple[str, str, str]] = field(default_factory=list)


def check(sketches: Sketches, day: date, settings: DriftSettings, state: DriftState) -> DriftReport | None:
    return check_drift(sketches.read, day, settings, state, available=sketches.available)


def replay(sketches: Sketches, days: list[date], settings: DriftSettings, state: DriftState
           ) -> tuple[list[DayCheck], list[DriftState]]:
    """One check per day as the sensor does; a trigger is requested (the replay has no busy models)."""
    checks, states = [], []
    for day in days:
        report = check(sketches, day, settings, state)
        if report is None:
            checks.append(DayCheck(day, [], [], False, None, {}))
        else:
            triggers = report.triggers(last_triggered_on=state.last_trigger)
            flagged = [(str(r.station), str(r.feature)) for r in report.flagged.itertuples(index=False)]
            retrain = [(str(r.station), str(r.feature)) for r in report.retrain_rows.itertuples(index=False)]
            broken: list[tuple[str, str, str]] = []
            if triggers:
                state = state.fired(report)
            else:  # as the sensor: a sensor_error alert for broken sensors not alerted lately
                broken, state = state.sensor_fault_alerts(report)
            checks.append(DayCheck(day, flagged, retrain, bool(triggers), triggers[0].severity if triggers else None,
                                   report.references(), broken))
        states.append(state)
    return checks, states


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def clean_summary(checks: list[DayCheck]) -> dict:
    years = len(checks) / 365.25
    triggered = [c for c in checks if c.triggered]
    drivers = Counter(f"{c.retrain[0][0]}/{c.retrain[0][1]}" for c in triggered if c.retrain)
    flagged_pairs = Counter(f"{s}/{f}" for c in checks for s, f in c.flagged)
    kinds = Counter()
    smallest = None
    for c in checks:
        for kind, info in c.references.items():
            kinds[kind] += info["pairs"]
            if kind != "insufficient":
                smallest = info["min_days"] if smallest is None else min(smallest, info["min_days"])
    gaps = [(b.day - a.day).days for a, b in zip(triggered, triggered[1:])]
    return {
        "triggers": len(triggered),
        "per_year": round(len(triggered) / years, 2),
        "trigger_days": [c.day.isoformat() for c in triggered],
        "trigger_gaps_days": gaps,
        "drivers": dict(drivers.most_common()),
        "days_without_report": sum(1 for c in checks if not c.references),
        "mean_pairs_flagged_per_day": round(float(np.mean([len(c.flagged) for c in checks])), 3),
        "days_with_a_flag": sum(1 for c in checks if c.flagged),
        "alert_only_days_per_year": round(sum(1 for c in checks if c.flagged and not c.retrain) / years, 1),
        # what reaches the operator besides retraining: sensor_error alerts for broken sensors
        "pushed_alerts_per_year": round(sum(1 for c in checks if c.broken) / years, 1),
        **{f"{name}_pairs": dict(Counter(f"{s}/{f}" for c in checks for s, f, what in c.broken
                                         if what == kind).most_common(10))
           for name, kind in (("flat_line", "flat line"), ("silent", "silent"))},
        "most_flagged_pairs": dict(flagged_pairs.most_common(10)),
        "reference_pair_tests": dict(kinds),
        "smallest_reference_days": smallest,
    }


def fault_column(kind: str, frame: pd.DataFrame, measured: list[str], target: str) -> tuple[str | None, str | None]:
    """(column the kind is injected into, why not: ``None`` when it can run). A pollutant the
    network does not measure is replaced: a step by the forecast target, a spread by another
    ``measured`` pollutant; ``stuck`` draws from the measured pollutants (``None`` column)."""
    column = BENCHMARK_FAULTS[kind]["column"]
    if not measured:
        return None, "the network measures no pollutant"
    if column is None or (column in frame.columns and frame[column].notna().any()):
        return column, None
    if column not in POLLUTANTS:
        return None, f"the network does not measure {column}"
    if BENCHMARK_FAULTS[kind]["mode"] == "step":
        return (target if target in measured else measured[0]), None
    others = [p for p in measured if p != target]
    return (others or measured)[0], None


def fault_cases(frame: pd.DataFrame, sketches: Sketches, settings: DriftSettings, clean: list[DayCheck],
                states: list[DriftState], kind: str, seed: int, target: str = "pm25") -> dict:
    """Inject ``CASES`` faults of ``kind`` and replay the sensor from each start for ``DETECT_DAYS`` days."""
    stations = sorted(frame[STATION].unique())
    measured = [p for p in POLLUTANTS if p in frame.columns and frame[p].notna().any()]
    column, skipped = fault_column(kind, frame, measured, target)
    if skipped:
        return {"cases": 0, "detected": 0, "named_first": 0, "median_delay_days": None, "skipped": skipped,
                "records": []}
    index = {c.day: i for i, c in enumerate(clean)}
    faults = seeded_faults(kind, stations, FIRST + timedelta(days=1), LAST - timedelta(days=DETECT_DAYS),
                           cases=CASES, seed=seed, columns=measured)
    if column is not None and column != BENCHMARK_FAULTS[kind]["column"]:
        faults = [dataclasses.replace(f, column=column) for f in faults]
    records, not_injected = [], []
    for fault in faults:
        days = days_between(fault.start, fault.start + timedelta(days=DETECT_DAYS - 1))
        try:
            faulty = sketches.with_fault(frame, fault, days)
        except ValueError as error:  # e.g. stuck where the sensor has no reading to repeat: nothing to find
            not_injected.append({**fault.describe(), "reason": str(error)})
            continue
        state = states[index[fault.start] - 1]
        found, retrained = None, False
        for day in days:  # day by day, as the sensor, the whole DETECT_DAYS (a retrain may come later)
            (c,), (state,) = replay(faulty, [day], settings, state)
            retrained |= c.triggered and fault.pair in c.retrain
            if found is None and fault.pair in c.flagged and fault.pair not in set(clean[index[day]].flagged):
                found = c
        records.append({
            **fault.describe(),
            "detected": found is not None,
            "delay_days": None if found is None else (found.day - fault.start).days,
            "named_first": bool(found and found.flagged[0] == fault.pair),
            "triggered": retrained,  # its station-feature retrained the models within DETECT_DAYS
            "pairs_flagged": None if found is None else len(found.flagged),
            "named_instead": None if found is None or found.flagged[0] == fault.pair else "/".join(found.flagged[0]),
        })
    delays = [r["delay_days"] for r in records if r["detected"]]
    return {
        "cases": len(records),
        "detected": sum(r["detected"] for r in records),
        "named_first": sum(r["named_first"] for r in records),
        "median_delay_days": statistics.median(delays) if delays else None,
        "fault": {**BENCHMARK_FAULTS[kind], **({"column": column} if column else {})},
        "records": records,
        **({"not_injected": not_injected} if not_injected else {}),
    }


def clean_and_faults(frame: pd.DataFrame, sketches: Sketches, settings: DriftSettings, days: list[date],
                     clock: float, target: str = "pm25") -> tuple[dict, dict]:
    """The clean replay's summary and every fault kind's cases, under ``settings``."""
    checks, states = replay(sketches, days, settings, DriftState())
    drift = clean_summary(checks)
    print(f"clean: {drift['triggers']} drift triggers ({drift['per_year']} / year) "
          f"in {time.perf_counter() - clock:.0f} s; drivers {drift['drivers']}", flush=True)
    faults = {}
    for i, kind in enumerate(BENCHMARK_FAULTS):  # a kind's position seeds its cases, whichever are run
        if KINDS is not None and kind not in KINDS:
            continue
        faults[kind] = fault_cases(frame, sketches, settings, checks, states, kind, SEED + i, target)
        f = faults[kind]
        if f.get("skipped"):
            print(f"{kind}: skipped, {f['skipped']}", flush=True)
            continue
        print(f"{kind}: detected {f['detected']}/{f['cases']}, named first {f['named_first']}, "
              f"median delay {f['median_delay_days']} ({time.perf_counter() - clock:.0f} s)", flush=True)
    return drift, faults


def sweep(frame: pd.DataFrame, sketches: Sketches, shipped: DriftSettings, days: list[date], clock: float,
          suffix: str = "") -> None:
    """Clean + faults at every ``OPERATING_POINTS`` entry: ``triggers_sweep<suffix>.json`` / ``.md``."""
    rows = []
    for point in OPERATING_POINTS:
        settings = shipped.model_copy(update=point)
        print(f"operating point {point or 'shipped'}", flush=True)
        drift, faults = clean_and_faults(frame, sketches, settings, days, clock)
        rows.append({
            "settings": point, "shipped": not point,
            "drift_retrains_per_year": drift["per_year"],
            "alert_only_days_per_year": drift["alert_only_days_per_year"],
            "pairs_flagged_per_day": drift["mean_pairs_flagged_per_day"],
            "faults": {kind: {key: f[key] for key in ("cases", "detected", "named_first", "median_delay_days")}
                       for kind, f in faults.items()},
        })
    result = {"first": FIRST.isoformat(), "last": LAST.isoformat(), "shipped": shipped.model_dump(),
              "points": rows, "seconds": round(time.perf_counter() - clock, 1)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"triggers_sweep{suffix}.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    (RESULTS / f"triggers_sweep{suffix}.md").write_text(sweep_markdown(result, suffix))
    print(sweep_markdown(result))


def sweep_markdown(result: dict, suffix: str = "") -> str:
    kinds = list(result["points"][0]["faults"])
    lines = [
        f"# Drift settings swept on Beijing, {result['first']}..{result['last']}",
        "",
        "Each row replays the clean data and the injected faults of `make bench-triggers` with the shipped "
        "drift settings, except those named. Detected: faulty station-feature flagged within "
        f"{DETECT_DAYS} days (of {CASES}) / named first in the report, median delay in days in brackets.",
        "",
        "| settings | drift retrains / year | alert-only days / year | pairs flagged / day | "
        + " | ".join(kinds) + " |",
        "|---|---|---|---|" + "---|" * len(kinds),
    ]
    for row in result["points"]:
        name = "shipped" if row["shipped"] else ", ".join(f"{k}={v}" for k, v in row["settings"].items())
        cells = [f"{f['detected']} / {f['named_first']} ({f['median_delay_days']})" for f in row["faults"].values()]
        lines.append(f"| {name} | {row['drift_retrains_per_year']} | {row['alert_only_days_per_year']} | "
                     f"{row['pairs_flagged_per_day']} | " + " | ".join(cells) + " |")
    args = "--sweep" + (f" --period {suffix[1:]}" if suffix else "")
    lines += ["", f"Reproduce: `make bench-triggers BENCH_ARGS=\"{args}\"` ({result['seconds']:.0f} s on this run)."]
    return "\n".join(lines) + "\n"


# --- outputs ---------------------------------------------------------------------------------
def markdown(result: dict) -> str:
    clean, faults = result["clean"], result["faults"]
    lines = [
        f"# Trigger benchmark on {result.get('source') or 'Beijing'}, {result['first']}..{result['last']} "
        f"({clean['days']} days, "
        f"{result.get('stations', 12)} stations)",
        "",
        f"Drift rule: `{result['drift_settings']['rule']}` ({result['rule_note']}).",
        "",
        "## Clean data: triggers per year, each sensor replayed as deployed",
        "",
        "| sensor | triggers / year | note |",
        "|---|---|---|",
    ]
    per_year = clean["per_year"]
    drift = clean["drift"]
    lines.append(f"| drift | {per_year['drift']} | {drift['triggers']} triggers; "
                 f"{drift['mean_pairs_flagged_per_day']} station-features flagged on an average day |")
    for name in ("performance", "schedule"):
        value = per_year.get(name)
        lines.append(f"| {name} | {'—' if value is None else value} | "
                     f"{'from the deployed policy backtest' if value is not None else 'run with --policies'} |")
    pushed = drift.get("pushed_alerts_per_year")
    lines += ["", f"Days with findings that only alert (no retrain): {drift['alert_only_days_per_year']} per year"
              + (f"; of them pushed as a `sensor_error` alert (a flat line or a silent sensor): {pushed} per year" if pushed is not None
                 else "") + ".",
              "", "Drift triggers were driven by (first station-feature that retrains): "
              + (", ".join(f"{k} ×{v}" for k, v in drift["drivers"].items()) or "none") + ".", ""]
    lines += [f"References used by the tests (pair-days): {drift['reference_pair_tests']}; "
              f"smallest reference used: {drift['smallest_reference_days']} days.", ""]
    lines += ["## Injected faults", "",
              f"{result.get('cases_per_kind', DEFAULT_CASES)} seeded (station, day) cases per kind; detected = "
              "the faulty station-feature flagged "
              f"within {DETECT_DAYS} days on a day the clean data did not flag it.", "",
              "| fault | cases | detected | named first | median delay (days) | retrained within 7 days |",
              "|---|---|---|---|---|---|"]
    for kind, f in faults.items():
        if f.get("skipped"):
            lines.append(f"| {kind} | — | skipped: {f['skipped']} | | | |")
            continue
        triggered = sum(r["triggered"] for r in f["records"])
        column, usual = f["fault"].get("column"), BENCHMARK_FAULTS[kind]["column"]
        label = kind if column in (None, usual) else f"{kind} (on {column}; {usual} not measured)"
        lines.append(f"| {label} | {f['cases']} | {f['detected']} | {f['named_first']} | "
                     f"{f['median_delay_days']} | {triggered} |")
    for kind, f in faults.items():
        for case in f.get("not_injected", ()):
            lines.append(f"\n{kind}: a case at {case['station']}/{case['column']} from {case['start']} was not "
                         f"injected ({case['reason']}); `cases` counts the others.")
    policies = result.get("policies") or {}
    run = result.get("policy_run") or {}
    if policies:
        target = {"pm25": "PM2.5"}.get(result.get("target") or "pm25", result.get("target"))
        lines += ["", f"## Policies (backtest, XGBoost next-hour {target})", "",
                  "| policy | RMSE | retrains | train CPU s |", "|---|---|---|---|"]
        for name, p in policies.items():
            if isinstance(p, dict) and "rmse" in p:
                lines.append(f"| {name} | {p['rmse']:.3f} | {p['retrains']} | {p.get('train_cpu_seconds', '—')} |")
        goal = run.get("goal")
        if goal:
            change, low, high = goal["rmse_change"]
            lines += ["", f"Goal (the deployed policy's RMSE no worse than the best fixed schedule's, with at most "
                          f"30 % of its retrains): **{'met' if goal['met'] else 'not met'}**. deployed: RMSE "
                          f"{goal['deployed_rmse']:.3f}, {goal['deployed_retrains']} retrains; best fixed schedule "
                          f"{goal['best_fixed']}: RMSE {goal['best_fixed_rmse']:.3f}, {goal['best_fixed_retrains']} "
                          f"retrains; RMSE {'no worse' if goal['rmse_no_worse'] else 'worse'} ({change:+.2%}, 95 % "
                          f"block-bootstrap interval {low:+.2%}..{high:+.2%}), retrains "
                          f"{goal['retrain_share']:.0%} of the schedule's "
                          f"({'within' if goal['retrains_within_share'] else 'above'} 30 %)."]
        if run.get("wall_seconds") is not None:
            lines += ["", f"Policy backtest {run['start']}..{run['end']}: {run['fits']} models "
                          f"({run['fit_cpu_seconds']:.0f} CPU s of fitting), {run['wall_seconds'] / 60:.1f} min wall on "
                          f"{run['cpus']} cores (1-minute load average {run['load_avg_before']} before, "
                          f"{run['load_avg_after']} after)."]
    ran_policies = run.get("wall_seconds") is not None and not run.get("carried_over")
    what = "clean + faults + the policy backtest" if ran_policies else "clean + faults"
    if run.get("carried_over"):
        period = "" if result.get("period", "scored") == "scored" else f" --period {result['period']}"
        lines += ["", f"The policies are those of the last `make bench-triggers BENCH_ARGS=\"--policies{period}\"` "
                      "run, kept; the drift figures above are from this run."]
    args = " ".join((["--policies"] if ran_policies else [])
                    + ([] if result.get("period", "scored") == "scored" else ["--period", result["period"]])
                    + (["--stations", ",".join(result["station_subset"])] if result.get("station_subset") else [])
                    + (["--source", result["source"], "--name", result["name"]] if result.get("source") else [])
                    + (["--target", result["target"]] if result.get("target") else [])
                    + ([f"--cases {result['cases_per_kind']}"]
                       if result.get("cases_per_kind", DEFAULT_CASES) != DEFAULT_CASES else [])
                    + (["--kinds", ",".join(result["kinds"])] if result.get("kinds") else [])
                    + [f"--set {item}" for item in result.get("set") or ()]
                    + ([f"--peer-min-others {result['peer_min_others']}"] if result.get(
                        "peer_min_others", feature_stats.PEER_MIN_OTHERS) != feature_stats.PEER_MIN_OTHERS else [])
                    + ([f"--residual-floor-share {result['residual_floor_share']}"] if result.get(
                        "residual_floor_share", schema.RESIDUAL_FLOOR_SHARE) != schema.RESIDUAL_FLOOR_SHARE else []))
    flags = f' BENCH_ARGS="{args}"' if args else ""
    lines += ["", f"Reproduce: `make bench-triggers{flags}` ({result['seconds']:.0f} s for {what} on this run)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    global FIRST, LAST, CASES, KINDS, PEER_MIN_OTHERS, RESIDUAL_FLOOR_SHARE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rule", default=None, help="drift rule to replay (default: the shipped one)")
    parser.add_argument("--policies", action="store_true", help="also run the policy backtest (slow)")
    parser.add_argument("--sweep", action="store_true", help="replay clean + faults at every OPERATING_POINTS entry")
    parser.add_argument("--period", choices=sorted(PERIODS), default="scored",
                        help="scored: 2015-03..2017-02 (the committed figures); dev: 2013-04..2015-02, where the "
                             "thresholds were chosen (writes *_dev files)")
    parser.add_argument("--data", default=str(BEIJING), help="the Beijing (PRSA) directory")
    parser.add_argument("--source", default=None,
                        help="replay another network instead: any AQI_SOURCE spec (csv:<dir>, prsa:<dir>, "
                             "simulated:...), every day it holds after a 45-day warm-up; writes triggers_<name>.*")
    parser.add_argument("--name", default="custom", help="with --source: the result files' name (triggers_<name>)")
    parser.add_argument("--target", default=None, help="the forecast target drift retrains on (training.target)")
    parser.add_argument("--stations", default=None,
                        help="comma-separated stations: replay a smaller network (writes *_<n>stations files)")
    parser.add_argument("--cases", type=int, default=CASES,
                        help=f"seeded cases per fault kind (default {CASES}; more tell close settings apart; "
                             "writes *_<n>cases files)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="replay with a setting changed (e.g. drift.cusum_k=0.5; repeatable); writes "
                             "*_<key><value> files")
    parser.add_argument("--peer-min-others", type=int, default=PEER_MIN_OTHERS,
                        help=f"other stations an hour's residual against its peers needs in the sketches "
                             f"(default {PEER_MIN_OTHERS}; writes *_peers<n> files)")
    parser.add_argument("--residual-floor-share", type=float, default=RESIDUAL_FLOOR_SHARE,
                        help=f"the sketches' residuals against the peers on log(value + floor × this) "
                             f"(default {RESIDUAL_FLOOR_SHARE}; writes *_share<x> files)")
    parser.add_argument("--kinds", default=None,
                        help="comma-separated fault kinds to replay (default: all; writes *_<kinds> files)")
    args = parser.parse_args(argv)
    stations = [s.strip() for s in args.stations.split(",") if s.strip()] if args.stations else None
    if args.source and (args.period != "scored" or args.sweep):
        parser.error("--period and --sweep choose and score Beijing's thresholds; a --source replay uses all its days")
    if args.cases < 1 or args.peer_min_others < 1:
        parser.error("--cases and --peer-min-others must be at least 1")
    if not args.residual_floor_share > 0:
        parser.error("--residual-floor-share must be above 0")
    KINDS = [k.strip() for k in args.kinds.split(",") if k.strip()] if args.kinds else None
    unknown_kinds = sorted(set(KINDS or ()) - set(BENCHMARK_FAULTS))
    if unknown_kinds:
        parser.error(f"--kinds: {unknown_kinds} are not fault kinds ({sorted(BENCHMARK_FAULTS)})")
    CASES, PEER_MIN_OTHERS, RESIDUAL_FLOOR_SHARE = args.cases, args.peer_min_others, args.residual_floor_share
    spec = args.source or f"prsa:{args.data}"
    from aqi_assets.core.data.sources import source_from_spec

    source = source_from_spec(spec)
    if stations:
        try:
            source = StationSubset(source, stations)
        except ValueError as error:  # raised, not parser.error: the message names the stations
            raise SystemExit(f"--stations: {error}") from error
    FIRST, LAST = source_days(source, spec) if args.source else PERIODS[args.period]
    suffix = (f"_{args.name}" if args.source else "" if args.period == "scored" else f"_{args.period}") \
        + (f"_{len(stations)}stations" if stations else "") + (f"_{CASES}cases" if CASES != DEFAULT_CASES else "") \
        + ("_" + "_".join(KINDS) if KINDS else "") \
        + (f"_peers{PEER_MIN_OTHERS}" if PEER_MIN_OTHERS != feature_stats.PEER_MIN_OTHERS else "") \
        + (f"_share{RESIDUAL_FLOOR_SHARE:g}" if RESIDUAL_FLOOR_SHARE != schema.RESIDUAL_FLOOR_SHARE else "")
    clock = time.perf_counter()
    overrides = dict(item.split("=", 1) for item in args.set if "=" in item)
    if len(overrides) < len(args.set):
        parser.error(f"--set takes KEY=VALUE, got {[item for item in args.set if '=' not in item]}")
    if args.target is not None:
        overrides["training.target"] = args.target
    try:
        config = RetrainingConfig().with_overrides(overrides)
    except ValueError as error:
        parser.error(f"--set: {error}")
    suffix += "".join(f"_{key.rsplit('.', 1)[-1]}{value}" for key, value in overrides.items()
                      if key != "training.target")
    settings = config.drift_in_force() if args.rule is None else config.drift_in_force().model_copy(update={"rule": args.rule})
    stem = ("triggers" if args.rule is None else f"triggers_{args.rule}") + suffix
    print(f"reading {spec} and sketching every station-day ...", flush=True)
    frame, sketches = load(source, first=FIRST - timedelta(days=WARM_UP_DAYS) if args.source else DATA_FIRST)
    print(f"  {len(frame):,} rows, {len(sketches.by_day)} days sketched in {time.perf_counter() - clock:.0f} s", flush=True)
    days = days_between(FIRST, LAST)
    if args.sweep:
        return sweep(frame, sketches, settings, days, clock, suffix)
    drift, faults = clean_and_faults(frame, sketches, settings, days, clock, config.training.target)
    previous = RESULTS / f"{stem}.json"
    policies, policy_run = {}, {}
    per_year = {"drift": drift["per_year"], "performance": None, "schedule": None}
    if args.policies:
        from bench.bench_trigger_policies import run_policies

        policies, per_year_extra, policy_run = run_policies(source, None if args.source else args.period, config)
        per_year.update(per_year_extra)
    elif previous.is_file() and not args.source:  # Beijing's policies do not belong to another network
        old = json.loads(previous.read_text())
        policies, policy_run = old.get("policies", {}), old.get("policy_run", {})
        per_year.update({name: value for name, value in old.get("clean", {}).get("per_year", {}).items()
                         if name != "drift"})
        if policy_run:
            policy_run = {**policy_run, "carried_over": True}  # from an earlier --policies run
    result = {
        "first": FIRST.isoformat(), "last": LAST.isoformat(), "period": args.period,
        "stations": int(frame[STATION].nunique()), "station_subset": stations, "source": args.source,
        "name": args.name if args.source else None, "target": args.target,
        "cases_per_kind": CASES, "kinds": KINDS, "set": args.set, "peer_min_others": PEER_MIN_OTHERS,
        "residual_floor_share": RESIDUAL_FLOOR_SHARE,
        "drift_settings": settings.model_dump(),
        "rule_note": "shipped default" if args.rule is None else "an alternative rule, not the default",
        "clean": {"days": len(days), "per_year": per_year, "drift": drift},
        "faults": faults,
        "policies": policies,
        "policy_run": policy_run,
        "seconds": round(time.perf_counter() - clock, 1),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    (RESULTS / f"{stem}.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main(sys.argv[1:])
