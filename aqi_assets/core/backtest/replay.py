"""The retraining backtest: replay a source day by day under policies, with the platform's own code.

Every policy starts from one model trained on the ``window_days`` before ``start``. Each replay
day ``d`` the serving model is scored exactly as the daily live-performance scoring does
(``evaluate(forecaster, frame, d, d)``: forecasts whose target hour falls on ``d``, beside
persistence on the same rows, one ``PERFORMANCE_COLUMNS`` row), then the policy decides
(``backtest_policies.decide``: ``schedule_due``, ``evaluate_performance``, ``check_drift``). A
retrain decided on ``d`` fits on the window ending ``d`` and serves from ``d + 1``; nothing is
decided on the last replay day.

Training uses the trainers as the platform does (``make_forecaster(kind, spec, preset, **hyper)``
then ``fit``) on the ``window_days`` ending the training day. ``fit_on="window"`` (default)
fits on the whole window without early stopping: the replay has no gates to feed, every retrain
is promoted, so no holdout is kept back and the model sees the freshest days.
``fit_on="split"`` fits exactly as a live candidate: ``split_window`` into train / validation
(early stopping) / holdout (unused here), so the newest ``holdout_days`` are never trained on.
Input validation and gates are not replayed.

A policy named ``<name>+warm`` retrains warm: each fit continues the serving model
(``fit(..., warm_start=serving)``, adding ``warm_start_rounds`` trees, as ``training.warm_start``
does live) instead of training from scratch.

For speed, a model is trained once per training day and shared by every policy that retrains
on that day (a warm fit: on that day from the same serving model; its CPU seconds are counted
for each of them). XGBoost fits and forecasts read the tabular features of the whole replay
frame, computed once (``FeatureGrid``; the same models and scores as rebuilding them per fit).
With ``workers > 1`` every fit runs in that many worker processes, one thread each, while the
replay goes on (``FitPool``): the fits known in advance (the initial model, the fixed
schedules') are queued in day order when the replay starts, and a fit the replay is waiting for
(a triggered retrain, or a scheduled one not reached yet) jumps the queue.
A model's daily scores come from one
``predict`` over a run of days (``daily_scores``, identical to ``evaluate`` day by day), extended
as long as some policy keeps the model serving. Replay figures pool every forecast of the
replay: RMSE = sqrt(Σ n·rmse² / Σ n) over the daily rows, i.e. the RMSE of all forecasts at once.
``train_cpu_seconds`` counts the retrains only (process CPU time of ``fit``, every thread); the
initial model, common to all policies, is reported apart.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import time
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from aqi_assets.core.backtest.policies import Policy, PolicyState, decide
from aqi_assets.core.configuration.config import TrainingSettings
from aqi_assets.core.training.forecasting import (
    Forecaster,
    ForecastSpec,
    make_forecaster,
    read_forecaster,
    scored_predictions,
    split_window,
)
from aqi_assets.core.training.forecasting.base import check_target
from aqi_assets.core.training.metrics import scored_metrics
from aqi_assets.core.data.schema import STATION, TIMESTAMP, coerce_numeric
from aqi_assets.core.data.sources.base import ObservationSource, days_between
from aqi_assets.core.data.station_graph import StationGraph, build_station_graph
from aqi_assets.core.monitoring.triggers import PERFORMANCE_COLUMNS, SEVERITIES, Trigger

#: XGBoost settings of a replay: 150 trees, as the reference scripts use. Smaller than the
#: product's ``full`` preset (up to 2,000 deeper trees on two boosters) so a three-year replay
#: with a few hundred fits stays well under an hour on 2 cores. A warm retrain adds 25 trees,
#: about the product's proportion (300 on up to 2,000). Every setting that shapes a tree is
#: pinned here, so the committed replay figures do not move when the product's preset is retuned.
REPLAY_XGBOOST: dict[str, Any] = {
    "n_estimators": 150, "learning_rate": 0.1, "max_depth": 6, "max_bin": 128,
    "min_child_weight": 10.0, "subsample": 0.8, "colsample_bytree": 0.8, "early_stopping_rounds": 100,
    "log_blend": 0.0, "nthread": 2, "warm_start_rounds": 25,
}  # fmt: skip
#: Rows of the daily score table beyond ``PERFORMANCE_COLUMNS``: the serving model's training end.
TRAINED_THROUGH = "trained_through"
#: Hours of history read before the first issue time of a scoring run, beyond the lookback.
SCORING_MARGIN_HOURS = 24
#: Scoring runs start at this many days and double with each extension, up to the maximum.
FIRST_SCORING_DAYS, MAX_SCORING_DAYS = 8, 128

#: ``progress(days_done, total_days, message)``
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class BacktestSettings:
    """What is replayed and how models are trained (``training``: target, horizon, window, preset)."""

    start: date
    end: date
    kind: str = "xgboost"
    training: TrainingSettings = field(default_factory=TrainingSettings)
    hyperparams: dict[str, Any] | None = None
    fit_on: Literal["window", "split"] = "window"

    def __post_init__(self):
        if self.end < self.start:
            raise ValueError(f"backtest end {self.end} is before its start {self.start}")
        if self.fit_on not in ("window", "split"):
            raise ValueError(f"fit_on must be 'window' or 'split', not {self.fit_on!r}")

    @property
    def spec(self) -> ForecastSpec:
        return ForecastSpec(target=self.training.target, horizon_hours=self.training.horizon_hours)

    @property
    def model_hyperparams(self) -> dict[str, Any]:
        """Keywords for ``make_forecaster``: ``REPLAY_XGBOOST`` (XGBoost at ``full``), then ``hyperparams``."""
        base = REPLAY_XGBOOST if self.kind == "xgboost" and self.training.preset == "full" else {}
        return {**base, **(self.hyperparams or {})}

    @property
    def days(self) -> list[date]:
        return days_between(self.start, self.end)

    @property
    def data_start(self) -> date:
        """The first day the replay reads: the initial model's training window."""
        return self.start - timedelta(days=self.training.window_days)

    def describe(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(), "end": self.end.isoformat(), "days": len(self.days),
            "kind": self.kind, "target": self.training.target, "horizon_hours": self.training.horizon_hours,
            "window_days": self.training.window_days, "preset": self.training.preset, "fit_on": self.fit_on,
            "hyperparams": self.model_hyperparams,
        }  # fmt: skip


# --- data ------------------------------------------------------------------------------------
def load_replay_frame(source: ObservationSource, settings: BacktestSettings, first: date | None = None) -> pd.DataFrame:
    """Every row from ``first`` (default: the initial training window) to ``end``, numeric, time-sorted."""
    frame = source.read_range(first or settings.data_start, settings.end)
    return sort_frame(frame)


def sort_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with numeric columns as floats, sorted by time then station (for slicing by time)."""
    frame = coerce_numeric(frame)
    frame[TIMESTAMP] = pd.to_datetime(frame[TIMESTAMP])
    frame[STATION] = frame[STATION].astype(str)
    return frame.sort_values([TIMESTAMP, STATION], kind="stable").reset_index(drop=True)


def _time_slice(frame: pd.DataFrame, lo: pd.Timestamp, hi: pd.Timestamp) -> pd.DataFrame:
    """Rows with ``lo <= timestamp < hi`` of a time-sorted frame."""
    stamps = frame[TIMESTAMP].to_numpy()
    a = stamps.searchsorted(lo.to_datetime64(), side="left")
    b = stamps.searchsorted(hi.to_datetime64(), side="left")
    return frame.iloc[a:b]


def training_frames(frame: pd.DataFrame, settings: BacktestSettings, through: date
                    ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The ``(train, valid)`` frames of a model trained on the window ending ``through``."""
    first = through - timedelta(days=settings.training.window_days - 1)
    window = _time_slice(frame, pd.Timestamp(first), pd.Timestamp(through + timedelta(days=1)))
    if settings.fit_on == "window":
        return window.reset_index(drop=True), None
    train, valid, _holdout = split_window(window, settings.training, through)
    return train, valid


# --- scoring ---------------------------------------------------------------------------------
def daily_scores(forecaster: Forecaster, frame: pd.DataFrame, first: date, last: date,
                 model: str = "xgboost", predictions: pd.DataFrame | None = None) -> pd.DataFrame:
    """One ``PERFORMANCE_COLUMNS`` row per day ``first``..``last``: ``evaluate(forecaster, frame, d, d)``.

    One ``predict`` over the whole run of days instead of one per day; the rows and arithmetic
    are those of ``evaluate`` (``scored_metrics`` on the forecasts whose target hour falls on the
    day). ``frame`` needs the forecaster's lookback before ``first``. Days without forecasts get
    ``n = 0`` and NaN metrics. ``predictions``: ``forecaster.predict(frame)`` when already made
    (e.g. ``predict_window`` of a ``FeatureGrid`` window of the same rows).
    """
    scored = scored_predictions(forecaster, frame, first, last, predictions)
    day_of = scored["target_time"].dt.normalize().to_numpy()
    observed = scored["observed"].to_numpy(float)
    predicted = scored["prediction"].to_numpy(float)
    persistence = scored["persistence"].to_numpy(float)
    order = np.argsort(day_of, kind="stable")
    day_sorted = day_of[order]
    rows = []
    for day in days_between(first, last):
        stamp = np.datetime64(pd.Timestamp(day))
        a, b = day_sorted.searchsorted(stamp, "left"), day_sorted.searchsorted(stamp, "right")
        idx = order[a:b]
        metrics = scored_metrics(observed[idx], predicted[idx], persistence[idx], forecaster.spec.target)
        rows.append({"date": pd.Timestamp(day), "model": model,
                     **{c: metrics[c] for c in PERFORMANCE_COLUMNS[2:]}})
    out = pd.DataFrame(rows, columns=list(PERFORMANCE_COLUMNS))
    out["n"] = out["n"].astype(int)
    return out


@dataclass
class TrainedModel:
    """One fitted model of the replay and the daily scores computed for it so far.

    ``parent`` is the model a warm fit continued (``None``: trained from scratch).
    """

    trained_through: date
    forecaster: Forecaster
    cpu_seconds: float
    wall_seconds: float
    scores: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(PERFORMANCE_COLUMNS)))
    parent: TrainedModel | None = None

    @property
    def key(self) -> tuple:
        """What identifies the fit: its training day, and for a warm fit the key of its parent."""
        return (self.trained_through,) if self.parent is None else (self.trained_through, self.parent.key)

    @property
    def serves_from(self) -> date:
        return self.trained_through + timedelta(days=1)

    @property
    def scored_through(self) -> date:
        return self.trained_through + timedelta(days=len(self.scores))


class ModelStore:
    """Models of one replay by training day: each fitted once, scored lazily, shared by policies.

    A warm fit (continuing a serving model) depends on that model too, so it is keyed by the
    training day and its parent's key. Models that can (XGBoost: ``feature_grid``) fit from
    and forecast with the tabular features of the whole replay frame, computed once, instead
    of rebuilding them for every fit and scoring run; the models and scores are the same
    (``share_features=False`` rebuilds them, as the platform's own ``fit`` and ``predict`` do).

    With ``cache_dir`` fitted models (and their measured CPU seconds) are also saved under a
    folder named by a hash of the training settings and the data, so a later replay with the
    same settings loads them instead of fitting again.
    """

    def __init__(self, frame: pd.DataFrame, graph: StationGraph | None, settings: BacktestSettings,
                 model: str = "xgboost", cache_dir: str | Path | None = None,
                 progress: Callable[[str], None] | None = None, share_features: bool = True):
        self.frame = frame
        self.share_features = share_features
        self.graph = graph
        self.settings = settings
        self.model = model
        self.progress = progress
        self.models: dict[tuple, TrainedModel] = {}
        self.fits = 0
        self.cache_dir = None if cache_dir is None else Path(cache_dir) / self._cache_key()
        self._grid: Any = None
        self._grid_built = False
        self.pool: FitPool | None = None
        #: CPU seconds of the fits run in this process (not in workers).
        self.fit_cpu_here = 0.0

    def _cache_key(self) -> str:
        s = self.settings
        data = self.frame[TIMESTAMP]
        text = json.dumps({
            "kind": s.kind, "spec": s.spec.to_dict(), "window_days": s.training.window_days,
            "validation_days": s.training.validation_days, "holdout_days": s.training.holdout_days,
            "preset": s.training.preset, "fit_on": s.fit_on, "hyperparams": s.model_hyperparams,
            "rows": len(self.frame), "stations": sorted(self.frame[STATION].unique().tolist()),
            "first": str(data.iloc[0]) if len(data) else None, "last": str(data.iloc[-1]) if len(data) else None,
            "checksum": float(np.nansum(self.frame[s.spec.target].to_numpy(float))),
        }, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def _new_forecaster(self, threads: int | None = None) -> Forecaster:
        s = self.settings
        hyper = s.model_hyperparams if threads is None else {**s.model_hyperparams, "nthread": threads}
        return make_forecaster(s.kind, s.spec, preset=s.training.preset, **hyper)

    @property
    def grid(self):
        """The ``FeatureGrid`` of the whole frame when the model kind has one (built on first use), else ``None``."""
        if not self._grid_built:
            forecaster = self._new_forecaster()
            if self.share_features and hasattr(forecaster, "feature_grid") and len(self.frame):
                self._grid = forecaster.feature_grid(self.frame, self.graph)
            self._grid_built = True
        return self._grid

    def get(self, trained_through: date, parent: TrainedModel | None = None) -> TrainedModel:
        """The model trained on the window ending ``trained_through`` (fitted on first request);
        with ``parent``, the one that continues ``parent`` on that window (a warm fit)."""
        key = (trained_through,) if parent is None else (trained_through, parent.key)
        found = self.models.get(key)
        if found is None:
            found = self._load(trained_through, parent) or self._fit(trained_through, parent)
            self.models[key] = found
        return found

    def _folder(self, through: date, parent: TrainedModel | None) -> Path:
        name = through.isoformat()
        if parent is not None:
            name += "-warm-" + hashlib.sha256(repr(parent.key).encode()).hexdigest()[:12]
        return self.cache_dir / name

    def start_pool(self, workers: int) -> None:
        """Fit in ``workers`` worker processes from now on (``FitPool``), one thread per fit.

        The workers are started once for the whole replay and each builds its feature grid once.
        ``fit_ahead`` queues fits known in advance; ``get`` of a model not fitted yet puts it
        first in the queue and waits for it, while the other workers go on with the queue.
        """
        if workers > 1 and self.pool is None:
            threads = max(1, int(self.settings.model_hyperparams.get("nthread", 1)) // workers)
            self.pool = FitPool(self, workers, threads)

    def fit_ahead(self, days: Sequence[date]) -> None:
        """Queue the full fits trained through ``days`` for the workers (in this order), unless
        fitted, cached or already queued; without a pool, nothing happens until ``get``."""
        if self.pool is None:
            return
        todo = [day for day in dict.fromkeys(days) if (day,) not in self.models]
        self.pool.ahead([day for day in todo if not self._remember(day, self._load(day, None))])

    def close(self) -> None:
        """Stop the worker processes, if any (queued fits not started are dropped)."""
        if self.pool is not None:
            self.pool.close()
            self.pool = None

    def _remember(self, day: date, trained: TrainedModel | None) -> bool:
        if trained is not None:
            self.models[(day,)] = trained
        return trained is not None

    def fit_forecaster(self, through: date, warm: Forecaster | None = None,
                       threads: int | None = None) -> tuple[Forecaster, float, float]:
        """A forecaster fitted on the window ending ``through`` (continuing ``warm`` when given),
        with the process CPU seconds and wall seconds of its fit."""
        s = self.settings
        train, valid = training_frames(self.frame, s, through)
        if train.empty:
            raise ValueError(f"no observations in the training window ending {through}")
        forecaster = self._new_forecaster(threads)
        wall, cpu = time.perf_counter(), time.process_time()
        if self.grid is not None:
            forecaster.fit_from_grid(self.grid, train, valid, warm_start=warm)
        else:
            forecaster.fit(train, valid, self.graph, warm_start=warm)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        return forecaster, cpu, wall

    def _fit(self, through: date, parent: TrainedModel | None) -> TrainedModel:
        warm = None if parent is None else parent.forecaster
        if self.pool is not None:
            forecaster, cpu, wall = self.pool.take(through, parent)
            where = f" in a worker ({self.pool.workers} at a time)"
        else:
            forecaster, cpu, wall = self.fit_forecaster(through, warm)
            self.fit_cpu_here += cpu
            where = ""
        self.fits += 1
        if self.progress is not None:
            how = "" if parent is None else f" warm from the model through {parent.trained_through}"
            self.progress(f"fitted {self.settings.kind} through {through}{how}{where} ({cpu:.1f} CPU s)")
        if self.cache_dir is not None:
            folder = self._folder(through, parent)
            forecaster.save(folder)
            (folder / "fit.json").write_text(json.dumps({"cpu_seconds": cpu, "wall_seconds": wall}))
        return TrainedModel(through, forecaster, cpu, wall, parent=parent)

    def _load(self, through: date, parent: TrainedModel | None) -> TrainedModel | None:
        if self.cache_dir is None:
            return None
        folder = self._folder(through, parent)
        if not (folder / "fit.json").is_file():
            return None
        fit = json.loads((folder / "fit.json").read_text())
        return TrainedModel(through, read_forecaster(folder), float(fit["cpu_seconds"]), float(fit["wall_seconds"]),
                            parent=parent)

    def scores(self, trained: TrainedModel, first: date, last: date) -> pd.DataFrame:
        """The daily scores of one model on ``first``..``last`` (days after its training window)."""
        if first < trained.serves_from:
            raise ValueError(f"the model trained through {trained.trained_through} cannot serve {first}")
        while trained.scored_through < last:
            self._extend(trained, last)
        a = (first - trained.serves_from).days
        b = (last - trained.serves_from).days + 1
        return trained.scores.iloc[a:b]

    def _extend(self, trained: TrainedModel, wanted: date) -> None:
        done = len(trained.scores)
        run = min(MAX_SCORING_DAYS, max(FIRST_SCORING_DAYS, 2 * done))
        first = trained.scored_through + timedelta(days=1)
        last = min(max(wanted, first + timedelta(days=run - 1)), self.settings.end)
        last = max(last, wanted)
        hours = trained.forecaster.lookback_hours + self.settings.training.horizon_hours + SCORING_MARGIN_HOURS
        lo, hi = pd.Timestamp(first) - pd.Timedelta(hours=hours), pd.Timestamp(last + timedelta(days=1))
        frame = _time_slice(self.frame, lo, hi)
        window = None if self.grid is None or frame.empty else self.grid.window(frame[TIMESTAMP].iloc[0], hi)
        predictions = None if window is None else trained.forecaster.predict_window(window)
        new = daily_scores(trained.forecaster, frame, first, last, self.model, predictions)
        trained.scores = new if done == 0 else pd.concat([trained.scores, new], ignore_index=True)


class FitPool:
    """Worker processes fitting the models of one replay, the most urgent first.

    At most ``workers`` fits run at once, one per worker process on ``threads`` threads; the
    others wait in a queue this process keeps, so a fit the replay is waiting for (``take``)
    starts as soon as a worker is free instead of behind every fit queued ``ahead``. Each fit
    returns its forecaster (pickled: the boosters to the bit) and the CPU and wall seconds it
    took in the worker. XGBoost trees do not depend on the thread count (a test checks), and on
    2 cores two one-thread fits at once keep both busy where one two-thread fit does not.
    """

    def __init__(self, store: ModelStore, workers: int, threads: int):
        self.workers, self.threads = int(workers), int(threads)
        self._cond = threading.Condition(threading.RLock())
        self._queue: list[tuple] = []
        self._args: dict[tuple, tuple[date, Forecaster | None]] = {}
        self._futures: dict[tuple, Future] = {}
        self._running = 0
        #: Keys of the fits in the order they were handed to a worker.
        self.started: list[tuple] = []
        # Spawned, not forked: a process forked after XGBoost's OpenMP threads ran can hang in
        # its first fit. Each worker builds its own feature grid once, for the whole replay.
        setup = (store.frame, store.graph, store.settings, store.share_features, self.threads)
        self._executor = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_worker_setup, initargs=setup)

    def ahead(self, days: Sequence[date]) -> None:
        """Queue full fits through ``days`` behind the fits already queued."""
        with self._cond:
            for day in days:
                key = (day,)
                if key not in self._args:
                    self._args[key] = (day, None)
                    self._queue.append(key)
            self._fill()

    def take(self, through: date, parent: TrainedModel | None = None) -> tuple[Forecaster, float, float]:
        """The fit through ``through`` (warm from ``parent``): waits for it, first in the queue."""
        key = (through,) if parent is None else (through, parent.key)
        with self._cond:
            if key not in self._args:
                self._args[key] = (through, None if parent is None else parent.forecaster)
            if key not in self._futures:
                if key in self._queue:
                    self._queue.remove(key)
                self._queue.insert(0, key)
                self._fill()
            while key not in self._futures:
                self._cond.wait()
            future = self._futures.pop(key)
            del self._args[key]
        return future.result()

    def _fill(self) -> None:
        """Start queued fits while fewer than ``workers`` run (holding the lock)."""
        while self._running < self.workers and self._queue:
            key = self._queue.pop(0)
            through, warm = self._args[key]
            future = self._executor.submit(_worker_fit, through, warm)
            self._running += 1
            self.started.append(key)
            self._futures[key] = future
            future.add_done_callback(self._finished)
        self._cond.notify_all()

    def _finished(self, _future: Future) -> None:
        with self._cond:
            self._running -= 1
            self._fill()

    def close(self) -> None:
        with self._cond:
            self._queue.clear()
        self._executor.shutdown(wait=True, cancel_futures=True)


#: In a worker process of a ``FitPool``: its store (frame, grid) and the threads per fit.
_WORKER_STORE: tuple[ModelStore, int] | None = None


def _worker_setup(frame: pd.DataFrame, graph: StationGraph | None, settings: BacktestSettings,
                  share_features: bool, threads: int) -> None:
    global _WORKER_STORE
    store = ModelStore(frame, graph, settings, share_features=share_features)
    store.grid  # noqa: B018 - built once per worker
    _WORKER_STORE = (store, threads)


def _worker_fit(through: date, warm: Forecaster | None) -> tuple[Forecaster, float, float]:
    """In a ``FitPool`` worker: fit the model through ``through`` (continuing ``warm``)."""
    store, threads = _WORKER_STORE
    return store.fit_forecaster(through, warm, threads)


def scheduled_days(policies: Sequence[Policy], settings: BacktestSettings) -> list[date]:
    """The training days known before the replay: every fixed schedule's full retrains."""
    first = settings.start - timedelta(days=1)
    days: set[date] = set()
    for policy in policies:
        if policy.kind == "fixed" and not policy.warm:
            step = timedelta(days=policy.interval_days)
            day = first + step
            while day < settings.end:
                days.add(day)
                day += step
    return sorted(days)


# --- results ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Retrain:
    """One retrain of a policy: decided at the end of ``decided_on`` (its training end), why, its cost."""

    decided_on: date
    triggers: tuple[Trigger, ...]
    cpu_seconds: float

    @property
    def serves_from(self) -> date:
        return self.decided_on + timedelta(days=1)

    @property
    def trigger_types(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.trigger_type for t in self.triggers))

    @property
    def severity(self) -> str:
        return max((t.severity for t in self.triggers), key=SEVERITIES.index)

    @property
    def reason(self) -> str:
        return " | ".join(t.reason for t in self.triggers)

    def record(self) -> dict[str, Any]:
        return {"decided_on": self.decided_on.isoformat(), "serves_from": self.serves_from.isoformat(),
                "trigger": "+".join(self.trigger_types), "severity": self.severity, "reason": self.reason,
                "cpu_seconds": round(self.cpu_seconds, 3)}


def pooled_metrics(scores: pd.DataFrame) -> dict[str, float]:
    """Metrics of every forecast in ``scores`` at once, from the daily rows (weighted by ``n``)."""
    rows = scores[scores["n"] > 0]
    n = rows["n"].to_numpy(float)
    total = n.sum()
    if total == 0:
        return {"n": 0, "rmse": math.nan, "mae": math.nan, "within_20": math.nan, "persistence_rmse": math.nan}

    def mean(column: str) -> float:
        return float(np.sum(n * rows[column].to_numpy(float)) / total)

    def root_mean_square(column: str) -> float:
        return math.sqrt(np.sum(n * rows[column].to_numpy(float) ** 2) / total)

    return {"n": int(total), "rmse": root_mean_square("rmse"), "mae": mean("mae"), "within_20": mean("within_20"),
            "persistence_rmse": root_mean_square("persistence_rmse")}


def rmse_change_interval(scores: pd.DataFrame, baseline: pd.DataFrame, block_days: int = 28,
                         draws: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """Relative RMSE change of ``scores`` against ``baseline`` on the same days, with a block-bootstrap interval.

    Both are daily score tables over the same days. Days are resampled in consecutive blocks of
    ``block_days`` (weather and model errors persist for days), keeping the pairing, so the
    interval says how much of a difference between two policies the replay's noise allows.
    Returns ``(change, low, high)``, e.g. ``(-0.01, -0.017, -0.003)`` = 1 % lower RMSE.
    """
    a = scores.set_index(pd.to_datetime(scores["date"]))
    b = baseline.set_index(pd.to_datetime(baseline["date"]))
    days = a.index.intersection(b.index)
    if len(days) == 0:
        raise ValueError("the two score tables share no days")
    a, b = a.loc[days], b.loc[days]
    n = b["n"].to_numpy(float)
    se_a = np.nan_to_num(n * a["rmse"].to_numpy(float) ** 2)
    se_b = np.nan_to_num(n * b["rmse"].to_numpy(float) ** 2)
    blocks = np.arange(len(days)) // block_days
    sums_a = np.bincount(blocks, se_a)
    sums_b = np.bincount(blocks, se_b)
    change = math.sqrt(sums_a.sum() / sums_b.sum()) - 1
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(sums_a), size=(draws, len(sums_a)))
    ratios = np.sqrt(sums_a[picks].sum(axis=1) / sums_b[picks].sum(axis=1)) - 1
    tail = (1 - level) / 2
    low, high = np.quantile(ratios, [tail, 1 - tail])
    return float(change), float(low), float(high)


@dataclass
class BacktestResult:
    """One policy's replay: the daily score table, its retrains and the pooled figures."""

    policy: Policy
    scores: pd.DataFrame
    retrains: list[Retrain]

    @property
    def name(self) -> str:
        return self.policy.name

    @property
    def retrain_count(self) -> int:
        return len(self.retrains)

    @property
    def train_cpu_seconds(self) -> float:
        return float(sum(r.cpu_seconds for r in self.retrains))

    @property
    def metrics(self) -> dict[str, float]:
        """Pooled over every forecast of the replay (see ``pooled_metrics``)."""
        return pooled_metrics(self.scores)

    @property
    def rmse(self) -> float:
        return self.metrics["rmse"]

    def summary(self) -> dict[str, Any]:
        """``rmse``, ``retrains``, ``train_cpu_seconds`` and the other pooled figures."""
        m = self.metrics
        return {"rmse": round(m["rmse"], 4), "retrains": self.retrain_count,
                "train_cpu_seconds": round(self.train_cpu_seconds, 1), "mae": round(m["mae"], 4),
                "within_20": round(m["within_20"], 4), "persistence_rmse": round(m["persistence_rmse"], 4),
                "forecasts": m["n"]}


@dataclass
class Backtest:
    """A whole replay: its settings, one result per policy, and what the fits cost."""

    settings: BacktestSettings
    results: dict[str, BacktestResult]
    initial_cpu_seconds: float
    fits: int
    fit_cpu_seconds: float
    wall_seconds: float
    source: str = ""
    #: CPU seconds of the replaying process outside the fits (scoring, decisions, features).
    replay_cpu_seconds: float = 0.0

    def summaries(self) -> dict[str, dict[str, Any]]:
        return {name: result.summary() for name, result in self.results.items()}


# --- the replay ------------------------------------------------------------------------------
def run_backtest(
    frame: pd.DataFrame,
    policies: Sequence[Policy],
    settings: BacktestSettings,
    graph: StationGraph | None = None,
    feature_stats: pd.DataFrame | None = None,
    progress: Progress | None = None,
    cache_dir: str | Path | None = None,
    source: str = "",
    share_features: bool = True,
    workers: int = 1,
) -> Backtest:
    """Replay ``settings.start``..``end`` of ``frame`` under every policy in lockstep (see module doc).

    ``frame`` is time-sorted (``sort_frame``) and holds the initial training window;
    ``feature_stats`` (daily sketches) is needed only by drift policies. ``share_features=False``
    rebuilds the features for every fit and scoring run (see ``ModelStore``). ``workers > 1``
    fits in that many worker processes (``FitPool``) while this process replays: the initial
    model and the fixed schedules' models (known in advance) are queued at once, in day order,
    and a fit the replay waits for (a triggered retrain) goes first.
    """
    if not policies:
        raise ValueError("no policies to replay")
    names = [p.name for p in policies]
    if len(set(names)) != len(names):
        raise ValueError(f"policy names must be unique, got {names}")
    if any(p.drift is not None for p in policies) and feature_stats is None:
        raise ValueError("a drift policy needs feature_stats")
    clock, cpu = time.perf_counter(), time.process_time()
    days = settings.days
    total = len(days)
    done = 0
    note = (lambda message: progress(done, total, message)) if progress is not None else None
    store = ModelStore(frame, graph, settings, model=policies[0].model, cache_dir=cache_dir, progress=note,
                       share_features=share_features)
    initial_day = settings.start - timedelta(days=1)
    try:
        store.start_pool(workers)
        store.fit_ahead([initial_day, *scheduled_days(policies, settings)])
        initial = store.get(initial_day)
        states = {p.name: PolicyState(initial_day) for p in policies}
        serving = {p.name: initial for p in policies}
        segments: dict[str, list[tuple[TrainedModel, date, date]]] = {p.name: [] for p in policies}
        starts = {p.name: settings.start for p in policies}
        retrains: dict[str, list[Retrain]] = {p.name: [] for p in policies}
        for today in days:
            for policy in policies:
                state = states[policy.name]
                served = store.scores(serving[policy.name], state.deployed_on, today)
                if today == settings.end:
                    continue
                triggers = decide(policy, state, today, served, feature_stats)
                if not triggers:
                    continue
                trained = store.get(today, parent=serving[policy.name] if policy.warm else None)
                retrains[policy.name].append(Retrain(today, tuple(triggers), trained.cpu_seconds))
                segments[policy.name].append((serving[policy.name], starts[policy.name], today))
                starts[policy.name] = today + timedelta(days=1)
                state.trained_through = today
                serving[policy.name] = trained
            done += 1
            if progress is not None and (done % 10 == 0 or done == total):
                progress(done, total, f"{today} replayed")
    finally:
        in_workers = store.pool is not None
        store.close()
    results = {}
    for policy in policies:
        parts = segments[policy.name] + [(serving[policy.name], starts[policy.name], settings.end)]
        tables = [store.scores(model, first, last).assign(**{TRAINED_THROUGH: pd.Timestamp(model.trained_through)})
                  for model, first, last in parts if first <= last]
        scores = pd.concat(tables, ignore_index=True)
        results[policy.name] = BacktestResult(policy, scores, retrains[policy.name])
    fit_cpu = float(sum(m.cpu_seconds for m in store.models.values()))
    # this process's own CPU: scoring, decisions and the feature grid (fits in workers are apart)
    replay_cpu = time.process_time() - cpu - (0.0 if in_workers else store.fit_cpu_here)
    return Backtest(settings, results, initial.cpu_seconds, len(store.models), fit_cpu,
                    time.perf_counter() - clock, source, replay_cpu_seconds=max(0.0, replay_cpu))


def backtest_source(
    source: ObservationSource,
    policies: Sequence[Policy],
    settings: BacktestSettings,
    progress: Progress | None = None,
    cache_dir: str | Path | None = None,
    workers: int = 1,
) -> Backtest:
    """Read ``source`` for the replay (and the drift reference when a policy needs it) and run it."""
    source.network().require_target(settings.training.target)
    needs_drift = [p.drift for p in policies if p.drift is not None]
    first = settings.data_start
    if needs_drift:
        from aqi_assets.core.monitoring.drift import SEASONAL_SHIFT_DAYS

        reach = max(SEASONAL_SHIFT_DAYS * d.seasonal_years + d.reference_days + d.current_days for d in needs_drift)
        first = max(min(first, settings.start - timedelta(days=reach)), source.first_day())
    frame = load_replay_frame(source, settings, first)
    if frame.empty:
        raise ValueError(f"the source {source.spec!r} has no observations for {first}..{settings.end}")
    check_target(frame, settings.training.target, f"the source {source.spec!r} ({first}..{settings.end})")
    first_day = frame[TIMESTAMP].iloc[0].date()
    if first_day > settings.data_start:
        raise ValueError(
            f"the replay from {settings.start} needs data from {settings.data_start} for its initial "
            f"{settings.training.window_days}-day training window; the source starts on {first_day}"
        )
    graph = build_station_graph(source.stations())
    stats = replay_feature_stats(frame) if needs_drift else None
    return run_backtest(frame, policies, settings, graph=graph, feature_stats=stats, progress=progress,
                        cache_dir=cache_dir, source=getattr(source, "spec", ""), workers=workers)


def replay_feature_stats(frame: pd.DataFrame) -> pd.DataFrame:
    """The daily ``feature_stats`` sketches of every day of ``frame`` (what drift rules read)."""
    from aqi_assets.core.data.feature_stats import compute_feature_stats

    day = frame[TIMESTAMP].dt.normalize()
    parts = [compute_feature_stats(rows, stamp.date()) for stamp, rows in frame.groupby(day, sort=True)]
    return pd.concat(parts, ignore_index=True)


# --- outputs ---------------------------------------------------------------------------------
TABLE_COLUMNS: tuple[str, ...] = ("policy", "RMSE", "vs never", "persistence RMSE", "MAE", "within 20 %",
                                  "retrains", "train CPU s")


def results_table(backtest: Backtest) -> str:
    """A Markdown table, one row per policy (RMSE pooled over the replay, change against ``never``,
    and the persistence forecast's RMSE on the same rows)."""
    summaries = backtest.summaries()
    never = summaries.get("never", {}).get("rmse")
    lines = ["| " + " | ".join(TABLE_COLUMNS) + " |", "|" + "|".join("---" for _ in TABLE_COLUMNS) + "|"]
    for name, s in summaries.items():
        change = f"{s['rmse'] / never - 1:+.2%}" if never else "—"
        lines.append(f"| {name} | {s['rmse']:.3f} | {change} | {s['persistence_rmse']:.3f} | {s['mae']:.3f} | "
                     f"{s['within_20']:.1%} | {s['retrains']} | {s['train_cpu_seconds']:.1f} |")
    return "\n".join(lines)


def backtest_record(backtest: Backtest) -> dict[str, Any]:
    """Everything the JSON report holds: settings, costs, and per policy its figures and retrains."""
    return {
        "source": backtest.source,
        "settings": backtest.settings.describe(),
        "fits": backtest.fits,
        "fit_cpu_seconds": round(backtest.fit_cpu_seconds, 1),
        "initial_model_cpu_seconds": round(backtest.initial_cpu_seconds, 1),
        "wall_seconds": round(backtest.wall_seconds, 1),
        "policies": {
            name: {**result.summary(), "policy": result.policy.describe(),
                   "retrain_days": [r.record() for r in result.retrains]}
            for name, result in backtest.results.items()
        },
    }


def write_json(backtest: Backtest, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(backtest_record(backtest), indent=1, default=str))
    return path


def smoothed_rmse(scores: pd.DataFrame, days: int = 30) -> pd.Series:
    """Centred ``days``-day RMSE by date, pooled over forecasts (days without forecasts skipped)."""
    table = scores.set_index(pd.to_datetime(scores["date"]))
    n = table["n"].astype(float)
    squares = (n * table["rmse"].astype(float) ** 2).where(n > 0, 0.0)
    window = dict(window=days, center=True, min_periods=max(1, days // 3))
    return np.sqrt(squares.rolling(**window).sum() / n.rolling(**window).sum())


def write_plot(backtest: Backtest, path: str | Path, smooth_days: int = 30) -> Path:
    """A PNG of each policy's ``smooth_days``-day RMSE, its change against ``never`` and its retrains."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    results = list(backtest.results.values())
    curves = {r.name: smoothed_rmse(r.scores, smooth_days) for r in results}
    never = curves.get("never")
    heights = [3, 2] if never is not None else [3]
    heights.append(0.4 + 0.14 * len(results))
    fig, axes = plt.subplots(len(heights), 1, figsize=(11, 2.2 + 1.1 * sum(heights)), sharex=True,
                             gridspec_kw={"height_ratios": heights})
    top, marks = axes[0], axes[-1]
    colours = plt.get_cmap("tab10")
    for i, result in enumerate(results):
        colour = colours(i % 10)
        curve = curves[result.name]
        top.plot(curve.index, curve.to_numpy(), lw=1.0, color=colour,
                 label=f"{result.name}: {result.rmse:.2f} ({result.retrain_count} retrains)")
        if never is not None:
            axes[1].plot(curve.index, 100 * (curve / never - 1).to_numpy(), lw=1.0, color=colour)
        when = [pd.Timestamp(r.serves_from) for r in result.retrains]
        marks.scatter(when, np.full(len(when), i), marker="|", s=60, color=colour)
    s = backtest.settings
    top.set_title(f"Backtest {s.start}..{s.end}: {s.kind}, {s.training.target} +{s.training.horizon_hours} h, "
                  f"{s.training.window_days}-day window (RMSE pooled over the replay in the legend)", fontsize=10)
    top.set_ylabel(f"RMSE, {smooth_days}-day centred", fontsize=8)
    top.legend(fontsize=7, loc="upper left", ncol=2)
    if never is not None:
        axes[1].axhline(0, color="black", lw=0.6)
        axes[1].set_ylabel("RMSE vs never, %", fontsize=8)
    for axis in axes[:-1]:
        axis.grid(alpha=0.3)
    marks.set_yticks(range(len(results)), [r.name for r in results], fontsize=7)
    marks.set_ylim(-0.7, len(results) - 0.3)
    marks.invert_yaxis()
    marks.set_xlabel("new model serves from")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write_outputs(backtest: Backtest, directory: str | Path, stem: str = "backtest") -> dict[str, Path]:
    """``<stem>.md`` (table), ``<stem>.json``, ``<stem>.png`` and ``<stem>_daily.csv`` in ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    table = directory / f"{stem}.md"
    table.write_text(results_table(backtest) + "\n")
    daily = directory / f"{stem}_daily.csv"
    pd.concat([r.scores.assign(policy=name) for name, r in backtest.results.items()], ignore_index=True
              ).to_csv(daily, index=False)
    return {"table": table, "json": write_json(backtest, directory / f"{stem}.json"),
            "plot": write_plot(backtest, directory / f"{stem}.png"), "daily": daily}
