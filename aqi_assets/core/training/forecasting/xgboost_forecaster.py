"""The gradient-boosted-trees forecaster: XGBoost on the tabular features, pooled over stations.

Two boosters share the features (``tabular_features``): one predicts the change of the target
over the horizon in concentration units (best for RMSE), the other the change of its logarithm
(best for relative accuracy at low concentrations). The forecast is their blend,
``(1 - log_blend) · delta + log_blend · log``; ``log_blend = 0`` trains only the first.
Early stopping watches the validation rows when there are any; missing feature values are
left to XGBoost's learned default directions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from aqi_assets.core.training.forecasting.base import Forecaster, Progress, Stopwatch, report_progress
from aqi_assets.core.training.forecasting.feature_grid import FeatureGrid, FeatureWindow
from aqi_assets.core.training.forecasting.panel import Panel
from aqi_assets.core.training.forecasting.tabular_features import LOOKBACK_HOURS, tabular_features
from aqi_assets.core.data.schema import TIMESTAMP
from aqi_assets.core.data.station_graph import StationGraph

BOOSTERS: tuple[str, ...] = ("delta", "log")


class _ProgressCallback(xgb.callback.TrainingCallback):
    def __init__(self, progress: Progress | None, label: str, every: int = 100):
        self.progress, self.label, self.every = progress, label, every

    def after_iteration(self, model, epoch: int, evals_log) -> bool:
        if (epoch + 1) % self.every == 0:
            scores = ", ".join(f"{data} {metric} {values[-1]:.4f}"
                               for data, metrics in evals_log.items() for metric, values in metrics.items())
            report_progress(self.progress, f"{self.label} round {epoch + 1}: {scores}")
        return False


class XGBoostForecaster(Forecaster):
    """XGBoost on lag, rolling, pollutant, weather, calendar and network features."""

    kind = "xgboost"
    DEFAULTS: dict[str, Any] = {
        "n_estimators": 2000,
        "learning_rate": 0.04,
        "max_depth": 9,
        "min_child_weight": 20.0,
        "subsample": 0.8,
        "colsample_bytree": 0.6,
        "max_bin": 128,
        "early_stopping_rounds": 30,
        "warm_start_rounds": 300,
        "log_blend": 0.3,
        "n_nearest": 6,
        "nthread": 2,
        "seed": 0,
    }
    FAST: dict[str, Any] = {"n_estimators": 40, "max_depth": 4, "learning_rate": 0.2, "min_child_weight": 10.0,
                            "early_stopping_rounds": 10, "n_nearest": 3, "warm_start_rounds": 20}

    def __init__(self, spec=None, **hyperparams):
        super().__init__(spec, **hyperparams)
        self.boosters: dict[str, xgb.Booster] = {}
        self.feature_names: list[str] = []

    @property
    def lookback_hours(self) -> int:
        return LOOKBACK_HOURS

    def _features(self, panel: Panel) -> dict[str, np.ndarray]:
        return tabular_features(panel, self.spec, self.graph, n_nearest=int(self.hyperparams["n_nearest"]))

    def _booster_params(self) -> dict[str, Any]:
        hp = self.hyperparams
        return {
            "objective": "reg:squarederror", "tree_method": "hist", "eta": float(hp["learning_rate"]),
            "max_depth": int(hp["max_depth"]), "min_child_weight": float(hp["min_child_weight"]),
            "subsample": float(hp["subsample"]), "colsample_bytree": float(hp["colsample_bytree"]),
            "max_bin": int(hp["max_bin"]), "nthread": int(hp["nthread"]), "seed": int(hp["seed"]),
        }

    def fit(self, train: pd.DataFrame, valid: pd.DataFrame | None = None,
            graph: StationGraph | None = None, progress: Progress | None = None,
            warm_start: Forecaster | None = None) -> dict[str, Any]:
        clock = Stopwatch()
        panel, train_rows, valid_rows = self._training_panel(train, valid)
        self.graph = graph
        return self._fit_features(panel, self._features(panel), train_rows, valid_rows, clock, progress, warm_start)

    def feature_grid(self, frame: pd.DataFrame, graph: StationGraph | None) -> FeatureGrid:
        """This model's features of the whole ``frame``, computed once, for ``fit_from_grid`` and ``predict_window``."""
        return FeatureGrid(frame, self.spec, graph, n_nearest=int(self.hyperparams["n_nearest"]))

    def fit_from_grid(self, grid: FeatureGrid, train: pd.DataFrame, valid: pd.DataFrame | None = None,
                      progress: Progress | None = None, warm_start: Forecaster | None = None) -> dict[str, Any]:
        """``fit(train, valid, grid.graph, ...)`` with the features read from ``grid`` instead of rebuilt.

        ``train`` and ``valid`` are consecutive rows of the frame ``grid`` was built on; the model
        is the one ``fit`` gives (see ``feature_grid``), which is also the fallback when the grid
        cannot give these rows' own features.
        """
        clock = Stopwatch()
        frames = self._training_frames(train, valid)
        window = None
        if (grid.spec, grid.n_nearest) == (self.spec, int(self.hyperparams["n_nearest"])):
            window = grid.window(min(f[TIMESTAMP].min() for f in frames),
                                 max(f[TIMESTAMP].max() for f in frames) + pd.Timedelta(hours=1))
        if window is None:
            return self.fit(train, valid, grid.graph, progress, warm_start)
        self.graph = grid.graph
        train_rows, valid_rows = self._part_rows(window.panel.times, frames)
        return self._fit_features(window.panel, window.features, train_rows, valid_rows, clock, progress, warm_start)

    def predict_window(self, window: FeatureWindow) -> pd.DataFrame:
        """``predict`` of the rows a ``FeatureGrid`` window stands for, from its features."""
        if not self.is_fitted:
            raise RuntimeError(f"{self.kind} forecaster is not fitted")
        return self._prediction_frame(window.panel, lambda panel: self._predict_features(panel, window.features))

    def _fit_features(self, panel: Panel, features: dict[str, np.ndarray], train_rows: np.ndarray,
                      valid_rows: np.ndarray, clock: Stopwatch, progress: Progress | None,
                      warm_start: Forecaster | None) -> dict[str, Any]:
        hp = self.hyperparams
        self.feature_names = list(features)
        start, warm_report = self._warm_boosters(warm_start, float(hp["log_blend"]) > 0)
        if start:
            _reseed(int(hp["seed"]))
        target, base = self._targets(panel)
        known = np.isfinite(target) & np.isfinite(base)
        train_mask = train_rows[:, None] & known
        valid_mask = valid_rows[:, None] & known
        if not train_mask.any():
            raise ValueError("xgboost: no training rows with a target and a recent observation")
        report: dict[str, Any] = {"train_rows": int(train_mask.sum()), "valid_rows": int(valid_mask.sum()),
                                  "features": len(self.feature_names), "warm_start": warm_report}
        report_progress(progress, f"xgboost: {report['train_rows']} training rows, "
                                  f"{report['valid_rows']} validation rows, {report['features']} features")
        x_train = _matrix(features, self.feature_names, train_mask)
        x_valid = _matrix(features, self.feature_names, valid_mask) if valid_mask.any() else None
        del features
        boosters = ("delta", "log") if float(hp["log_blend"]) > 0 else ("delta",)
        self.boosters = {}
        for name in boosters:
            label = _label(name, target, base)
            d_train = xgb.DMatrix(x_train, label[train_mask], feature_names=self.feature_names)
            # Training-set scores feed only the progress messages.
            evals = [(d_train, "train")] if progress is not None else []
            early = None
            if x_valid is not None:
                evals.append((xgb.DMatrix(x_valid, label[valid_mask], feature_names=self.feature_names), "valid"))
                early = int(hp["early_stopping_rounds"])
            rounds = int(hp["warm_start_rounds"]) if start else int(hp["n_estimators"])
            booster = xgb.train(self._booster_params(), d_train, rounds, evals=evals,
                                early_stopping_rounds=early, verbose_eval=False,
                                xgb_model=start.get(name),
                                callbacks=[_ProgressCallback(progress, f"xgboost[{name}]")])
            if early is not None:
                booster = booster[: booster.best_iteration + 1]
            self.boosters[name] = booster
            report[f"{name}_rounds"] = int(booster.num_boosted_rounds())
            report_progress(progress, f"xgboost[{name}]: {report[f'{name}_rounds']} rounds kept")
        report["seconds"] = clock.seconds
        self.training_report = report
        return report

    def _warm_boosters(self, champion: Forecaster | None, with_log: bool) -> tuple[dict[str, xgb.Booster], dict]:
        """Copies of the champion's boosters to add trees to (empty: train from scratch), and the
        report's ``warm_start`` entry."""
        if champion is None:
            return {}, {"used": False}
        problem = self._warm_start_problem(champion)
        if problem is None and list(champion.feature_names) != self.feature_names:
            problem = "the champion was trained on other features (the network changed)"
        if problem is None and set(champion.boosters) != ({"delta", "log"} if with_log else {"delta"}):
            problem = f"the champion has boosters {sorted(champion.boosters)}"
        if problem is not None:
            return {}, {"used": False, "reason": problem}
        boosters = {name: booster.copy() for name, booster in champion.boosters.items()}
        return boosters, {"used": True, "champion_rounds": {n: int(b.num_boosted_rounds()) for n, b in boosters.items()}}

    def _predict_grid(self, panel: Panel) -> np.ndarray:
        return self._predict_features(panel, self._features(panel))

    def _predict_features(self, panel: Panel, features: dict[str, np.ndarray]) -> np.ndarray:
        _, base = self._targets(panel)
        mask = self.issuable(panel)
        x = xgb.DMatrix(_matrix(features, self.feature_names, mask), feature_names=self.feature_names)
        b = base[mask]
        delta = b + self.boosters["delta"].predict(x)
        blend = float(self.hyperparams["log_blend"]) if "log" in self.boosters else 0.0
        values = delta
        if blend > 0:
            logged = np.expm1(np.log1p(np.clip(b, 0, None)) + self.boosters["log"].predict(x))
            values = (1 - blend) * delta + blend * logged
        grid = np.full(panel.shape, np.nan)
        grid[mask] = np.clip(values, 0.0, None)
        return grid

    def feature_importance(self) -> pd.Series:
        """Total gain per feature of the concentration-change booster, largest first."""
        gain = self.boosters["delta"].get_score(importance_type="total_gain")
        return pd.Series(gain, dtype=float).reindex(self.feature_names).fillna(0.0).sort_values(ascending=False)

    def _save_model(self, directory: Path) -> dict[str, Any]:
        for name, booster in self.boosters.items():
            booster.save_model(directory / f"xgboost_{name}.json")
        return {"feature_names": self.feature_names, "boosters": list(self.boosters)}

    def _load_model(self, directory: Path, state: dict[str, Any]) -> None:
        self.feature_names = list(state["feature_names"])
        self.boosters = {}
        for name in state["boosters"]:
            booster = xgb.Booster(params={"nthread": int(self.hyperparams["nthread"])})
            booster.load_model(directory / f"xgboost_{name}.json")
            self.boosters[name] = booster


def _reseed(seed: int) -> None:
    """Seed XGBoost's process-wide random generator with ``seed``.

    XGBoost seeds it when a new booster is first configured, but not for a booster that
    continues trained trees: a warm fit's row and column samples would otherwise come from
    wherever the process's previous fits left the generator (other fits, in another order, in
    another process: another model). A one-tree booster on two rows configures with ``seed``.
    """
    rows = xgb.DMatrix(np.zeros((2, 1), dtype=np.float32), label=np.zeros(2, dtype=np.float32))
    xgb.train({"seed": seed, "nthread": 1, "verbosity": 0}, rows, 1)


def _matrix(features: dict[str, np.ndarray], names: list[str], mask: np.ndarray) -> np.ndarray:
    """Rows ``mask`` of the features ``names``; a feature the panel cannot build now is NaN."""
    out = np.full((int(mask.sum()), len(names)), np.nan, dtype=np.float32)
    for j, name in enumerate(names):
        if name in features:
            out[:, j] = features[name][mask]
    return out


def _label(name: str, target: np.ndarray, base: np.ndarray) -> np.ndarray:
    if name == "delta":
        return target - base
    return np.log1p(np.clip(target, 0, None)) - np.log1p(np.clip(base, 0, None))
