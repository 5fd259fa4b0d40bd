"""Hourly node inputs for the sequence models (LSTM, GNN): transformed, scaled and imputed.

``SequenceScaler.fit`` learns, from training rows only, the mean and spread of each input
channel (pollutants and rain on a log scale, weather as is) and the scale of the target's
change over the horizon. ``inputs`` then turns any ``Panel`` into a ``(T, N, C)`` float32 array:
each channel standardised, gaps filled by carrying the last reading forward (at most
``fill_hours``) and then by the training mean (0 after scaling), plus a 0/1 channel per
pollutant saying whether it was really observed, and the hour of day and season as cyclic
channels. Nothing is ever filled from a later hour. Only the variables the training panel has
(``Panel.available``) become channels; the list is part of the fitted scaler.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from aqi_assets.core.training.forecasting.panel import Panel, forward_fill, rolling, shift
from aqi_assets.core.training.forecasting.spec import ForecastSpec

LOG_CHANNELS: tuple[str, ...] = ("pm25", "pm10", "so2", "no2", "co", "o3", "rain")
LINEAR_CHANNELS: tuple[str, ...] = ("temperature", "pressure", "dew_point", "wind_speed", "wind_u", "wind_v",
                                    "humidity")
MASK_CHANNELS: tuple[str, ...] = ("pm25", "pm10", "co")
CALENDAR_CHANNELS: tuple[str, ...] = ("hour_sin", "hour_cos", "season_sin", "season_cos")


def available_channels(panel: Panel, spec: ForecastSpec) -> list[str]:
    """The measurement channels a scaler fitted on ``panel`` uses: the target, then what the panel has."""
    names = [spec.target] + [c for c in LOG_CHANNELS + LINEAR_CHANNELS if c != spec.target and panel.has(c)]
    return names


def _raw_channels(panel: Panel, spec: ForecastSpec, names: list[str]) -> dict[str, np.ndarray]:
    """The unscaled channels ``names`` (measurements as above, log where they are concentrations)
    followed by the target's derived channels."""
    channels: dict[str, np.ndarray] = {}
    for name in names:
        values = panel[name]
        channels[name] = np.log1p(np.clip(values, 0, None)) if name in LOG_CHANNELS else values
    log_target = channels[spec.target]
    channels["target_change1"] = log_target - shift(log_target, 1)
    channels["target_change3"] = log_target - shift(log_target, 3)
    channels["target_mean24"] = rolling(log_target, 24, "mean")
    channels["target_mean72"] = rolling(log_target, 72, "mean")
    channels["target_std24"] = rolling(log_target, 24, "std", min_periods=2)
    return channels


def fit_statistics(grids: dict[str, np.ndarray], panel: Panel, spec: ForecastSpec, rows: np.ndarray
                   ) -> tuple[dict[str, float], dict[str, float], float]:
    """Mean and spread of each grid, and the spread of the target's change over the horizon, on
    the hours flagged in ``rows`` (finite values only; an empty or constant grid gets 0 and 1)."""
    mean: dict[str, float] = {}
    std: dict[str, float] = {}
    for name, grid in grids.items():
        values = grid[rows].ravel()
        values = values[np.isfinite(values)]
        mean[name] = float(values.mean()) if values.size else 0.0
        spread = float(values.std()) if values.size else 1.0
        std[name] = spread if spread > 1e-6 else 1.0
    y = panel[spec.target]
    change = (shift(y, -spec.horizon_hours) - y)[rows].ravel()
    change = change[np.isfinite(change)]
    return mean, std, float(change.std()) if change.size and change.std() > 1e-6 else 1.0


@dataclass
class SequenceScaler:
    """Fit-time statistics that turn panels into model inputs and targets into model outputs."""

    spec: ForecastSpec
    fill_hours: int = 24
    channel_names: list[str] = field(default_factory=list)
    mask_names: list[str] = field(default_factory=list)
    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)
    target_scale: float = 1.0

    def fit(self, panel: Panel, rows: np.ndarray) -> "SequenceScaler":
        """Learn channel statistics from the hours flagged in ``rows`` (bool, length T)."""
        channels = _raw_channels(panel, self.spec, available_channels(panel, self.spec))
        self.channel_names = list(channels)
        self.mask_names = [self.spec.target] + [c for c in MASK_CHANNELS if c != self.spec.target and panel.has(c)]
        self.mean, self.std, self.target_scale = fit_statistics(channels, panel, self.spec, rows)
        return self

    @property
    def n_channels(self) -> int:
        return len(self.channel_names) + len(self.mask_names) + len(CALENDAR_CHANNELS)

    def inputs(self, panel: Panel) -> np.ndarray:
        """``(T, N, C)`` float32 inputs: scaled, imputed channels, observed-masks, calendar."""
        measured = [c for c in self.channel_names if c in LOG_CHANNELS + LINEAR_CHANNELS]
        channels = _raw_channels(panel, self.spec, measured)
        T, N = panel.shape
        out = np.zeros((T, N, self.n_channels), dtype=np.float32)
        for c, name in enumerate(self.channel_names):
            grid = forward_fill(channels[name], limit=self.fill_hours)
            grid = (grid - self.mean[name]) / self.std[name]
            out[:, :, c] = np.nan_to_num(np.clip(grid, -10, 10), nan=0.0)
        c = len(self.channel_names)
        for name in self.mask_names:
            out[:, :, c] = np.isfinite(panel[name])
            c += 1
        hour = np.asarray(panel.times.hour, dtype=float)
        doy = np.asarray(panel.times.dayofyear, dtype=float)
        for values in (np.sin(2 * np.pi * hour / 24), np.cos(2 * np.pi * hour / 24),
                       np.sin(2 * np.pi * doy / 365.25), np.cos(2 * np.pi * doy / 365.25)):
            out[:, :, c] = values[:, None]
            c += 1
        return out

    def to_dict(self) -> dict:
        return {"spec": self.spec.to_dict(), "fill_hours": self.fill_hours,
                "channel_names": self.channel_names, "mask_names": self.mask_names, "mean": self.mean,
                "std": self.std, "target_scale": self.target_scale}

    @classmethod
    def from_dict(cls, data: dict) -> "SequenceScaler":
        return cls(spec=ForecastSpec.from_dict(data["spec"]), fill_hours=int(data["fill_hours"]),
                   channel_names=list(data["channel_names"]),
                   mask_names=list(data.get("mask_names", MASK_CHANNELS)), mean=dict(data["mean"]),
                   std=dict(data["std"]), target_scale=float(data["target_scale"]))
