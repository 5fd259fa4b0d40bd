"""Tabular features of a whole observation frame, computed once and read by many fits and forecasts.

A backtest fits hundreds of models on windows of one frame and scores each on the days after its
window. ``FeatureGrid`` lays the frame on one ``Panel`` and computes ``tabular_features`` once;
``window(lo, hi)`` gives the panel and the features that the rows ``lo <= timestamp < hi`` have
on their own (``Panel.from_frame`` of those rows, then ``tabular_features``), without building
either again.

Features are causal: a row reads hours ≤ its issue hour, at most ``LOOKBACK_HOURS`` back. A row
of the window at least ``LOOKBACK_HOURS`` after its start therefore has the same features in the
whole frame, to the last bit (``panel.rolling`` computes each hour from its own window, not from
running sums); the window's first ``LOOKBACK_HOURS`` hours, which on their own see no history
before the window, are recomputed on the window alone. Fits and forecasts from a window are
thus those of ``fit`` and ``predict`` on the window's rows. When the window's own panel would differ in shape — a
station or a measured variable without data in the window, no row at its first or last hour —
``window`` returns ``None`` and the caller builds from the frame as usual.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from aqi_assets.core.data.station_graph import StationGraph
from aqi_assets.core.training.forecasting.panel import Panel
from aqi_assets.core.training.forecasting.spec import ForecastSpec
from aqi_assets.core.training.forecasting.tabular_features import LOOKBACK_HOURS, tabular_features


@dataclass(frozen=True)
class FeatureWindow:
    """A window's own panel and its tabular features (``(T, N)`` float32 grids, by name)."""

    panel: Panel
    features: dict[str, np.ndarray]


class FeatureGrid:
    """``tabular_features`` of one frame (``spec``, ``graph``, ``n_nearest``), and windows of it."""

    def __init__(self, frame: pd.DataFrame, spec: ForecastSpec, graph: StationGraph | None, n_nearest: int):
        self.spec, self.graph, self.n_nearest = spec, graph, int(n_nearest)
        self.panel = Panel.from_frame(frame)
        self.features = {name: grid.astype(np.float32) for name, grid in self._compute(self.panel).items()}

    def _compute(self, panel: Panel) -> dict[str, np.ndarray]:
        return tabular_features(panel, self.spec, self.graph, n_nearest=self.n_nearest)

    def window(self, lo: pd.Timestamp, hi: pd.Timestamp) -> FeatureWindow | None:
        """The panel and features of the frame's rows with ``lo <= timestamp < hi`` on their own.

        ``None`` when those rows' own panel would not be rows of this one with the same stations
        and variables (see the module docstring), or when ``lo`` or ``hi`` is not on the hour.
        """
        lo, hi = pd.Timestamp(lo), pd.Timestamp(hi)
        if lo != lo.floor("h") or hi != hi.floor("h"):
            return None
        times = self.panel.times
        a, b = int(times.searchsorted(lo, "left")), int(times.searchsorted(hi, "left"))
        if b <= a:
            return None
        present = self.panel.present[a:b]
        if not (present[0].any() and present[-1].any() and present.any(axis=0).all()):
            return None
        if any(not np.isfinite(self.panel[name][a:b]).any() for name in self.panel.available):
            return None
        panel = self.panel.rows(a, b)
        head = min(b - a, LOOKBACK_HOURS)
        first = self._compute(panel.rows(0, head))
        if list(first) != list(self.features):
            return None
        features = {name: np.concatenate([first[name].astype(np.float32), grid[a + head:b]])
                    for name, grid in self.features.items()}
        return FeatureWindow(panel, features)
