"""The recurrent forecaster: an LSTM over each station's own recent hours, pooled over stations.

Each sample is one station's last ``window_hours`` of inputs (``SequenceScaler``: scaled,
imputed from the past, with observed-masks and calendar); the LSTM's final state and the
current inputs feed a small head that predicts the change of the target over the horizon
relative to the latest observation, trained with the same blended loss as the GNN. Stations are
independent here: the LSTM never sees its neighbours.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from aqi_assets.core.training.forecasting.base import Forecaster, Progress, Stopwatch, report_progress
from aqi_assets.core.training.forecasting.panel import Panel
from aqi_assets.core.training.forecasting.sequence_inputs import SequenceScaler
from aqi_assets.core.training.forecasting.torch_training import (
    batch_indices,
    blended_loss,
    fit_samples,
    TorchForecaster,
    residual_forecast,
    set_torch_threads,
)
from aqi_assets.core.data.station_graph import StationGraph



class StationLSTM(nn.Module):
    """LSTM over a (B, L, C) window, then a head on [final state, current inputs] → (B,)."""

    def __init__(self, channels: int, hidden: int, layers: int, dropout: float):
        super().__init__()
        self.embed = nn.Linear(channels, hidden)
        self.lstm = nn.LSTM(hidden, hidden, num_layers=layers, batch_first=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.head = nn.Sequential(nn.Linear(hidden + channels, hidden), nn.SiLU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (state, _) = self.lstm(torch.relu(self.embed(x)))
        return self.head(torch.cat([state[-1], x[:, -1]], dim=-1)).squeeze(-1)


class LSTMForecaster(TorchForecaster):
    """Per-station LSTM (see the module docstring)."""

    kind = "lstm"
    model_file = "lstm.pt"
    DEFAULTS: dict[str, Any] = {
        "window_hours": 24,
        "hidden": 64,
        "layers": 1,
        "dropout": 0.1,
        "batch_size": 256,
        "max_epochs": 4,
        "patience": 1,
        "learning_rate": 2e-3,
        "weight_decay": 1e-4,
        "log_loss_weight": 0.3,
        "output": "additive",
        "ema_decay": 0.998,
        "schedule": "cosine",
        "max_seconds": 600.0,
        "fill_hours": 24,
        "threads": 0,
        "warm_start_epochs": 2,
        "warm_start_lr_scale": 0.3,
        "seed": 0,
    }
    FAST: dict[str, Any] = {"window_hours": 6, "hidden": 16, "batch_size": 256, "max_epochs": 10,
                            "patience": 4, "learning_rate": 5e-3, "max_seconds": 60.0}

    def _new_net(self) -> StationLSTM:
        hp = self.hyperparams
        return StationLSTM(self.scaler.n_channels, int(hp["hidden"]), int(hp["layers"]), float(hp["dropout"]))

    def fit(self, train: pd.DataFrame, valid: pd.DataFrame | None = None,
            graph: StationGraph | None = None, progress: Progress | None = None,
            warm_start: Forecaster | None = None) -> dict[str, Any]:
        clock = Stopwatch()
        hp = self.hyperparams
        set_torch_threads(int(self.hyperparams["threads"]))
        torch.manual_seed(int(hp["seed"]))
        rng = np.random.default_rng(int(hp["seed"]))
        self.graph = graph
        panel, train_rows, valid_rows = self._training_panel(train, valid)
        self.scaler = SequenceScaler(self.spec, fill_hours=int(hp["fill_hours"])).fit(panel, train_rows)
        fit_hp, warm_report = self._prepare_net(warm_start)
        x = torch.from_numpy(self.scaler.inputs(panel))
        target, base = self._targets(panel)
        known = np.isfinite(target) & np.isfinite(base)
        window = int(hp["window_hours"])
        usable = known.copy()
        usable[: window - 1] = False
        train_cells = np.argwhere(train_rows[:, None] & usable)
        valid_cells = np.argwhere(valid_rows[:, None] & usable)
        base_t = torch.from_numpy(np.nan_to_num(base).astype(np.float32))
        target_t = torch.from_numpy(np.nan_to_num(target).astype(np.float32))
        scale, log_weight, output = self.scaler.target_scale, float(hp["log_loss_weight"]), str(hp["output"])
        report_progress(progress, f"lstm: {len(train_cells)} training and {len(valid_cells)} validation "
                                  f"station-hours, window {window} h")

        def loss(net, cells):
            t, s = torch.as_tensor(cells[:, 0]), torch.as_tensor(cells[:, 1])
            forecast = residual_forecast(net(_windows(x, t, s, window)), base_t[t, s], scale, output)
            return blended_loss(forecast, target_t[t, s], scale, log_weight), len(cells)

        report = fit_samples(self.net, train_cells, valid_cells, loss, fit_hp, rng, progress, "lstm")
        report["warm_start"] = warm_report
        report.update({"train_samples": int(len(train_cells)), "valid_samples": int(len(valid_cells)),
                       "seconds": clock.seconds})
        self.training_report = report
        return report

    def _predict_grid(self, panel: Panel) -> np.ndarray:
        set_torch_threads(int(self.hyperparams["threads"]))
        x = torch.from_numpy(self.scaler.inputs(panel))
        _, base = self._targets(panel)
        cells = np.argwhere(self.issuable(panel))
        grid = np.full(panel.shape, np.nan)
        window = int(self.hyperparams["window_hours"])
        self.net.eval()
        with torch.no_grad():
            for chunk in batch_indices(len(cells), 4096, None):
                t, s = cells[chunk, 0], cells[chunk, 1]
                out = self.net(_windows(x, torch.as_tensor(t), torch.as_tensor(s), window))
                base_ts = torch.from_numpy(base[t, s].astype(np.float32))
                forecast = residual_forecast(out, base_ts, self.scaler.target_scale, str(self.hyperparams["output"]))
                grid[t, s] = np.clip(forecast.numpy(), 0.0, None)
        return grid


def _windows(x: torch.Tensor, t: torch.Tensor, s: torch.Tensor, window: int) -> torch.Tensor:
    """``(B, window, C)`` inputs of station ``s[i]`` for the hours up to ``t[i]``."""
    steps = t[:, None] + torch.arange(-window + 1, 1)[None, :]
    return x[steps, s[:, None]]
