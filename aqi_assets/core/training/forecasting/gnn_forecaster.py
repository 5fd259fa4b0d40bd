"""The graph forecaster: each station's inputs encoded, then mixed over the station graph.

Two node encoders (``node_inputs``):

- ``features`` (default): each station's tabular features at the issue hour (``FeatureScaler``:
  its own target history, pollutants, weather, calendar and the network's summaries, the same
  families the XGBoost model reads) through an MLP. One sample is one hour of the whole
  network, so an epoch is cheap and the graph layers do the rest.
- ``sequence`` (after PM2.5-GNN and GC-LSTM): each station's last ``window_hours`` of inputs
  (``SequenceScaler``) through a GRU, or with ``recurrent_graph`` a graph GRU whose state also
  takes in the neighbours' states every hour; the final state and the current inputs together.

Either way the encoded stations are mixed over the ``StationGraph`` by ``graph_layers`` rounds of
message passing (torch-geometric ``MessagePassing``). A message from a neighbour depends on both
stations' states and on the edge: distance, bearing and the current wind at the source
projected on the edge (so an upwind station speaks louder). The head predicts the change of the
target over the horizon relative to the latest observation (a residual over persistence),
trained on a blend of squared error in concentration units and squared error of the logarithm
(``log_loss_weight``), which trades a little RMSE for better relative accuracy at low
concentrations.

Without a graph at fit time every station is linked to every other (no distances).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch_geometric.nn import MessagePassing

from aqi_assets.core.training.forecasting.base import Forecaster, Progress, Stopwatch, report_progress
from aqi_assets.core.training.forecasting.panel import Panel
from aqi_assets.core.training.forecasting.feature_inputs import FeatureScaler
from aqi_assets.core.training.forecasting.sequence_inputs import SequenceScaler
from aqi_assets.core.training.forecasting.tabular_features import LOOKBACK_HOURS
from aqi_assets.core.training.forecasting.torch_training import (
    batch_indices,
    blended_loss,
    fit_samples,
    TorchForecaster,
    residual_forecast,
    set_torch_threads,
)
from aqi_assets.core.data.station_graph import StationGraph, build_station_graph

EDGE_FEATURES = 7


class WindAwareConv(MessagePassing):
    """Gated messages ``σ(g(z)) · φ(z)``, ``z = [h_target, h_source, edge]``, averaged per station."""

    def __init__(self, hidden: int, edge_dim: int):
        super().__init__(aggr="mean")
        self.message_net = nn.Sequential(nn.Linear(2 * hidden + edge_dim, hidden), nn.SiLU(),
                                         nn.Linear(hidden, hidden))
        self.gate = nn.Linear(2 * hidden + edge_dim, 1)
        self.update_net = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.SiLU())
        self.norm = nn.LayerNorm(hidden)

    def forward(self, h: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor) -> torch.Tensor:
        aggregated = self.propagate(edge_index, h=h, edge_attr=edge_attr)
        return self.norm(h + self.update_net(torch.cat([h, aggregated], dim=-1)))

    def message(self, h_i: torch.Tensor, h_j: torch.Tensor, edge_attr: torch.Tensor) -> torch.Tensor:
        z = torch.cat([h_i, h_j, edge_attr], dim=-1)
        return torch.sigmoid(self.gate(z)) * self.message_net(z)


class TransportConv(MessagePassing):
    """Light per-hour messages ``σ(a(h_target) + b(h_source) + c(edge)) · W h_source``, averaged.

    The gate is a sum of per-station and per-edge projections, so the per-edge work stays small
    enough to run at every hour of the window.
    """

    def __init__(self, hidden: int, edge_dim: int, gate_width: int = 16):
        super().__init__(aggr="mean")
        self.value = nn.Linear(hidden, hidden)
        self.gate_target = nn.Linear(hidden, gate_width)
        self.gate_source = nn.Linear(hidden, gate_width, bias=False)
        self.gate_edge = nn.Linear(edge_dim, gate_width, bias=False)
        self.gate_out = nn.Linear(gate_width, 1)

    def forward(self, h: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor) -> torch.Tensor:
        return self.propagate(edge_index, v=self.value(h), a=self.gate_target(h), b=self.gate_source(h),
                              edge_attr=edge_attr)

    def message(self, v_j: torch.Tensor, a_i: torch.Tensor, b_j: torch.Tensor, edge_attr: torch.Tensor):
        gate = self.gate_out(torch.nn.functional.silu(a_i + b_j + self.gate_edge(edge_attr)))
        return torch.sigmoid(gate) * v_j


class SpatioTemporalNet(nn.Module):
    """A recurrent unit over each station's window, graph convolution across stations, a head.

    With ``recurrent_graph`` the recurrent unit is a graph GRU: every hour each station's state
    also takes in its neighbours' states (``TransportConv``, with that hour's wind on the edges),
    so pollution carried between stations inside the window is modelled; otherwise a plain GRU.
    """

    def __init__(self, channels: int, hidden: int, graph_layers: int, dropout: float,
                 recurrent_graph: bool = False):
        super().__init__()
        self.embed = nn.Linear(channels, hidden)
        self.recurrent_graph = recurrent_graph
        if recurrent_graph:
            self.transport = TransportConv(hidden, EDGE_FEATURES)
            self.cell = nn.GRUCell(2 * hidden, hidden)
        else:
            self.gru = nn.GRU(hidden, hidden, batch_first=True)
        self.current = nn.Linear(channels, hidden)
        self.mix = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.SiLU())
        self.convs = nn.ModuleList([WindAwareConv(hidden, EDGE_FEATURES) for _ in range(graph_layers)])
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Sequential(nn.Linear(3 * hidden, hidden), nn.SiLU(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor) -> torch.Tensor:
        """``x`` (B, L, N, C), ``edge_index`` (2, B·E) over B·N nodes, ``edge_attr`` (L, B·E, D) → (B, N)."""
        b, length, n, c = x.shape
        seq = torch.relu(self.embed(x.permute(0, 2, 1, 3).reshape(b * n, length, c)))
        if self.recurrent_graph:
            state = seq.new_zeros(b * n, seq.shape[-1])
            for step in range(length):
                message = self.transport(state, edge_index, edge_attr[step])
                state = self.cell(torch.cat([seq[:, step], message], dim=-1), state)
        else:
            state = self.gru(seq)[1][-1]
        current = torch.relu(self.current(x[:, -1].reshape(b * n, c)))
        h = self.mix(torch.cat([state, current], dim=-1))
        spatial = h
        for conv in self.convs:
            spatial = conv(spatial, edge_index, edge_attr[-1])
        out = self.head(self.dropout(torch.cat([spatial, state, current], dim=-1)))
        return out.view(b, n)


class FeatureGraphNet(nn.Module):
    """An MLP over each station's features, graph convolution across stations, a head."""

    def __init__(self, channels: int, hidden: int, graph_layers: int, dropout: float):
        super().__init__()
        self.encode = nn.Sequential(nn.Linear(channels, hidden), nn.SiLU(), nn.Dropout(dropout),
                                    nn.Linear(hidden, hidden), nn.SiLU())
        self.convs = nn.ModuleList([WindAwareConv(hidden, EDGE_FEATURES) for _ in range(graph_layers)])
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.SiLU(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor) -> torch.Tensor:
        """``x`` (B, N, C), ``edge_index`` (2, B·E) over B·N nodes, ``edge_attr`` (L, B·E, D) → (B, N)."""
        b, n, c = x.shape
        own = self.encode(x.reshape(b * n, c))
        spatial = own
        for conv in self.convs:
            spatial = conv(spatial, edge_index, edge_attr[-1])
        return self.head(self.dropout(torch.cat([spatial, own], dim=-1))).view(b, n)


NODE_INPUTS: tuple[str, ...] = ("features", "sequence")


class GNNForecaster(TorchForecaster):
    """Spatio-temporal GNN over the station graph (see the module docstring)."""

    kind = "gnn"
    model_file = "gnn.pt"
    DEFAULTS: dict[str, Any] = {
        "node_inputs": "features",
        "window_hours": 8,
        "hidden": 128,
        "graph_layers": 1,
        "recurrent_graph": True,
        "dropout": 0.1,
        "batch_size": 64,
        "max_epochs": 5,
        "patience": 2,
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
    FAST: dict[str, Any] = {"window_hours": 6, "hidden": 32, "graph_layers": 2, "batch_size": 64,
                            "max_epochs": 20, "patience": 5, "learning_rate": 3e-3, "max_seconds": 60.0}

    def __init__(self, spec=None, **hyperparams):
        super().__init__(spec, **hyperparams)
        if self.hyperparams["node_inputs"] not in NODE_INPUTS:
            raise ValueError(f"gnn: node_inputs must be one of {NODE_INPUTS}, not {self.hyperparams['node_inputs']!r}")

    @property
    def by_features(self) -> bool:
        return self.hyperparams["node_inputs"] == "features"

    @property
    def lookback_hours(self) -> int:
        return LOOKBACK_HOURS if self.by_features else super().lookback_hours

    @property
    def window(self) -> int:
        """Hours of inputs one sample reads (1 for the feature encoder: features carry the history)."""
        return 1 if self.by_features else int(self.hyperparams["window_hours"])

    # --- fitting -----------------------------------------------------------------------------
    def _new_net(self) -> nn.Module:
        hp = self.hyperparams
        if self.by_features:
            return FeatureGraphNet(self.scaler.n_channels, int(hp["hidden"]), int(hp["graph_layers"]),
                                   float(hp["dropout"]))
        return SpatioTemporalNet(self.scaler.n_channels, int(hp["hidden"]), int(hp["graph_layers"]),
                                 float(hp["dropout"]), bool(hp["recurrent_graph"]))

    def _fit_scaler(self, panel: Panel, rows: np.ndarray) -> None:
        if self.by_features:
            self.scaler = FeatureScaler(self.spec).fit(panel, rows, self.graph)
        else:
            self.scaler = SequenceScaler(self.spec, fill_hours=int(self.hyperparams["fill_hours"])).fit(panel, rows)

    def _inputs(self, panel: Panel) -> np.ndarray:
        return self.scaler.inputs(panel, self.graph) if self.by_features else self.scaler.inputs(panel)

    def fit(self, train: pd.DataFrame, valid: pd.DataFrame | None = None,
            graph: StationGraph | None = None, progress: Progress | None = None,
            warm_start: Forecaster | None = None) -> dict[str, Any]:
        clock = Stopwatch()
        hp = self.hyperparams
        set_torch_threads(int(self.hyperparams["threads"]))
        torch.manual_seed(int(hp["seed"]))
        rng = np.random.default_rng(int(hp["seed"]))
        panel, train_rows, valid_rows = self._training_panel(train, valid)
        if graph is None:
            graph = build_station_graph(pd.DataFrame({"station": list(panel.stations)}))
        self.graph = graph
        self._fit_scaler(panel, train_rows)
        fit_hp, warm_report = self._prepare_net(warm_start)
        data = self._tensors(panel, with_targets=True)
        train_times = self._sample_times(data, train_rows)
        valid_times = self._sample_times(data, valid_rows)
        report_progress(progress, f"gnn: {len(train_times)} training and {len(valid_times)} validation "
                                  f"hours × {len(panel.stations)} stations, {self.graph.n_edges} edges")
        loss_fn = self._loss_fn(data)
        report = fit_samples(self.net, train_times, valid_times, loss_fn, fit_hp, rng, progress, "gnn")
        report["warm_start"] = warm_report
        report.update({"train_hours": int(len(train_times)), "valid_hours": int(len(valid_times)),
                       "stations": len(panel.stations), "edges": self.graph.n_edges,
                       "seconds": clock.seconds})
        self.training_report = report
        return report

    def _sample_times(self, data: dict[str, torch.Tensor], rows: np.ndarray) -> np.ndarray:
        usable = rows.copy()
        usable[: self.lookback_hours] = False
        usable &= data["mask"].any(dim=1).numpy()
        return np.flatnonzero(usable)

    def _tensors(self, panel: Panel, with_targets: bool) -> dict[str, torch.Tensor]:
        """Inputs, edge features and (when training) targets of a panel, as tensors."""
        graph = self.graph.for_stations(panel.stations)
        data: dict[str, Any] = {
            "x": torch.from_numpy(self._inputs(panel)),
            "edge_index": torch.from_numpy(graph.edge_index()),
            "edge_attr": torch.from_numpy(edge_features(graph, panel)),
            "n": len(panel.stations),
        }
        target, base = self._targets(panel)
        data["base"] = torch.from_numpy(np.nan_to_num(base).astype(np.float32))
        if with_targets:
            mask = np.isfinite(target) & np.isfinite(base)
            data["mask"] = torch.from_numpy(mask)
            data["target"] = torch.from_numpy(np.nan_to_num(target).astype(np.float32))
        return data

    def _batch_inputs(self, data, times: np.ndarray):
        window = self.window
        steps = torch.as_tensor(times[:, None] + np.arange(-window + 1, 1)[None, :])
        x = data["x"][steps[:, -1]] if self.by_features else data["x"][steps]  # (B, N, C) or (B, L, N, C)
        b, n = len(times), data["n"]
        edges = data["edge_index"]
        offsets = (torch.arange(b) * n).repeat_interleave(edges.shape[1])
        edge_index = edges.repeat(1, b) + offsets
        edge_attr = data["edge_attr"][steps.T].reshape(window, -1, EDGE_FEATURES)  # (L, B·E, D)
        return x, edge_index, edge_attr

    def _loss_fn(self, data):
        scale = self.scaler.target_scale
        log_weight = float(self.hyperparams["log_loss_weight"])
        output = str(self.hyperparams["output"])

        def loss(net, times):
            times = np.asarray(times)
            x, edge_index, edge_attr = self._batch_inputs(data, times)
            idx = torch.as_tensor(times)
            mask = data["mask"][idx]
            if not bool(mask.any()):
                return torch.zeros(()), 0
            out = net(x, edge_index, edge_attr)[mask]
            forecast = residual_forecast(out, data["base"][idx][mask], scale, output)
            return blended_loss(forecast, data["target"][idx][mask], scale, log_weight), int(mask.sum())

        return loss

    # --- prediction --------------------------------------------------------------------------
    def _predict_grid(self, panel: Panel) -> np.ndarray:
        set_torch_threads(int(self.hyperparams["threads"]))
        data = self._tensors(panel, with_targets=False)
        grid = np.full(panel.shape, np.nan)
        times = np.arange(min(self.lookback_hours, panel.shape[0]), panel.shape[0])
        self.net.eval()
        with torch.no_grad():
            for chunk in batch_indices(len(times), 4 * int(self.hyperparams["batch_size"]), None):
                t = times[chunk]
                x, edge_index, edge_attr = self._batch_inputs(data, t)
                out = self.net(x, edge_index, edge_attr)
                forecast = residual_forecast(out, data["base"][torch.as_tensor(t)], self.scaler.target_scale,
                                             str(self.hyperparams["output"]))
                grid[t] = np.clip(forecast.numpy(), 0.0, None)
        return grid


def edge_features(graph: StationGraph, panel: Panel) -> np.ndarray:
    """``(T, E, 7)`` float32 per-hour edge features.

    Static: distance / scale (0 if unknown), a 0/1 "distance unknown" flag, sin and cos of the
    bearing, the distance weight. Per hour: the cosine between the wind's travel direction at the
    source and the edge, and that cosine times the source's wind speed / 5 m/s.
    """
    scale = float(graph.settings.get("distance_scale_km") or 1.0)
    e = graph.n_edges
    distance = np.nan_to_num(graph.distance_km / scale, nan=0.0)
    unknown = np.isnan(graph.distance_km).astype(float)
    bearing = np.radians(np.nan_to_num(graph.bearing_deg, nan=0.0))
    static = np.stack([distance, unknown, np.sin(bearing) * (1 - unknown), np.cos(bearing) * (1 - unknown),
                       graph.weight], axis=-1)
    T = panel.shape[0]
    out = np.zeros((T, e, EDGE_FEATURES), dtype=np.float32)
    out[:, :, :5] = static[None]
    if e:
        wind = pd.DataFrame(panel["wind_from_deg"]).ffill(limit=3).to_numpy()
        speed = np.nan_to_num(pd.DataFrame(panel["wind_speed"]).ffill(limit=3).to_numpy())
        align = graph.wind_alignment(wind) * (1 - unknown)[None]
        out[:, :, 5] = align
        out[:, :, 6] = align * speed[:, graph.source] / 5.0
    return out
