"""Node inputs of the graph model's feature encoder: each station's tabular features, scaled.

``FeatureScaler.fit`` learns, from training rows only, which tabular features the panel can
build (``tabular_features``: the station's own history, pollutants, weather and calendar, and
the network's summaries), their mean and spread, and the scale of the target's change over the
horizon. ``inputs`` then turns any ``Panel`` into a ``(T, N, F)`` float32 array: each feature
standardised and clipped, a missing value set to the training mean (0 after scaling), plus a
0/1 channel per target-history feature saying whether it was missing. A feature the fitted
list names but a later panel cannot build is all missing, never an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from aqi_assets.core.training.forecasting.panel import Panel
from aqi_assets.core.training.forecasting.sequence_inputs import fit_statistics
from aqi_assets.core.training.forecasting.spec import ForecastSpec
from aqi_assets.core.training.forecasting.tabular_features import tabular_features
from aqi_assets.core.data.station_graph import StationGraph

#: Features whose absence is itself a signal (the station's own target history).
MISSING_FLAGS: tuple[str, ...] = ("y_now", "y_base", "y_lag1", "y_lag2", "y_lag3", "y_lag24", "y_mean3",
                                  "y_mean24", "y_std24")
CLIP = 8.0


@dataclass
class FeatureScaler:
    """Fit-time statistics that turn panels into feature inputs (see the module docstring)."""

    spec: ForecastSpec
    channel_names: list[str] = field(default_factory=list)
    mask_names: list[str] = field(default_factory=list)
    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)
    target_scale: float = 1.0

    @staticmethod
    def features(panel: Panel, spec: ForecastSpec, graph: StationGraph | None) -> dict[str, np.ndarray]:
        """The raw ``(T, N)`` feature grids of ``panel`` (no nearest-neighbour columns: the graph
        layers see the neighbours)."""
        return tabular_features(panel, spec, graph, n_nearest=0)

    def fit(self, panel: Panel, rows: np.ndarray, graph: StationGraph | None) -> "FeatureScaler":
        """Learn the feature list and statistics from the hours flagged in ``rows`` (bool, length T)."""
        grids = self.features(panel, self.spec, graph)
        self.channel_names = list(grids)
        self.mask_names = [name for name in MISSING_FLAGS if name in grids]
        self.mean, self.std, self.target_scale = fit_statistics(grids, panel, self.spec, rows)
        return self

    @property
    def n_channels(self) -> int:
        return len(self.channel_names) + len(self.mask_names)

    def inputs(self, panel: Panel, graph: StationGraph | None) -> np.ndarray:
        """``(T, N, F)`` float32 inputs: scaled features (missing → 0), then the missing flags."""
        grids = self.features(panel, self.spec, graph)
        out = np.zeros((*panel.shape, self.n_channels), dtype=np.float32)
        for c, name in enumerate(self.channel_names):
            grid = grids.get(name)
            if grid is not None:
                scaled = (grid - self.mean[name]) / self.std[name]
                out[:, :, c] = np.nan_to_num(np.clip(scaled, -CLIP, CLIP), nan=0.0)
        for c, name in enumerate(self.mask_names, start=len(self.channel_names)):
            grid = grids.get(name)
            out[:, :, c] = 1.0 if grid is None else np.isnan(grid)
        return out

    def to_dict(self) -> dict:
        return {"kind": "features", "spec": self.spec.to_dict(), "channel_names": self.channel_names,
                "mask_names": self.mask_names, "mean": self.mean, "std": self.std,
                "target_scale": self.target_scale}

    @classmethod
    def from_dict(cls, data: dict) -> "FeatureScaler":
        return cls(spec=ForecastSpec.from_dict(data["spec"]), channel_names=list(data["channel_names"]),
                   mask_names=list(data["mask_names"]), mean=dict(data["mean"]), std=dict(data["std"]),
                   target_scale=float(data["target_scale"]))
