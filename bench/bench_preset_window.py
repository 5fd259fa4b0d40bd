"""Benchmark: the shipped presets against the previous ones on the retraining benchmark's window.

``make bench-retrain`` times one retraining of the three models on the last 365 Beijing days
(2016-03-01..2017-02-28, validation and holdout the last 30 days each). This fits each model
twice on that same window and split, with ``train_candidate`` (the function the retraining
runs call): once with the shipped ``full`` preset and once with the preset the platform
shipped before the presets were retrained to convergence (``PREVIOUS_PRESETS``: XGBoost at
learning rate 0.05, depth 8, 256 bins; the LSTM up to 8 epochs; the GNN's recurrent
sequence encoder with a 480 s budget). Both run with the torch thread choice of today, so
only accuracy is compared like with like; the seconds are context. Writes
``bench/results/preset_window.json``.

``--seeds N`` (XGBoost only; ``make bench-preset-window BENCH_ARGS="xgboost --seeds 5"``) fits
both presets with seeds 0..N−1 and writes ``preset_window_seeds.json``: each preset's mean and
spread over seeds, so a difference between two single fits can be set against what a reseed
alone moves.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

from bench.common import machine_info, write_result

BEIJING = Path(os.environ.get("AQI_BEIJING_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "beijing"))
WINDOW_DAYS, SPLIT_DAYS = 365, 30
#: The full presets before they were retrained to convergence (what ``make bench-retrain``'s
#: goal compares with), as overrides of today's forecaster classes.
PREVIOUS_PRESETS: dict[str, dict] = {
    "xgboost": {"learning_rate": 0.05, "max_depth": 8, "min_child_weight": 10.0, "colsample_bytree": 0.8,
                "max_bin": 256, "early_stopping_rounds": 100},
    "lstm": {"max_epochs": 8, "patience": 2, "max_seconds": 900.0},
    "gnn": {"node_inputs": "sequence", "hidden": 64, "graph_layers": 2, "dropout": 0.2, "batch_size": 32,
            "max_epochs": 30, "patience": 6, "weight_decay": 1e-2, "schedule": "cosine_budget", "max_seconds": 480.0},
}


def seeded(model: str, frame, graph, settings, seeds: int) -> dict:
    """Both presets of ``model`` fitted with seeds 0..``seeds``−1: RMSE per seed, mean and sd."""
    import statistics

    from aqi_assets.core.training.candidate import train_candidate

    out: dict[str, dict] = {}
    for label, overrides in (("shipped", {}), ("previous", PREVIOUS_PRESETS[model])):
        rmses = []
        for seed in range(seeds):
            candidate = train_candidate(model, frame, graph, settings, **{**overrides, "seed": seed})
            rmses.append(round(candidate.metrics["rmse"], 3))
            print(f"  {model} {label} seed {seed}: RMSE {rmses[-1]:.3f}", flush=True)
        out[label] = {"rmse_by_seed": rmses, "mean": round(statistics.mean(rmses), 3),
                      "sd": round(statistics.stdev(rmses), 3) if seeds > 1 else None, "overrides": overrides}
    diff = out["shipped"]["mean"] - out["previous"]["mean"]
    pooled = math.sqrt(((out["shipped"]["sd"] or 0) ** 2 + (out["previous"]["sd"] or 0) ** 2) / seeds)
    out["mean_difference"] = round(diff, 3)
    out["difference_standard_error"] = round(pooled, 3)
    return out


def main(argv: list[str]) -> None:
    from aqi_assets.core.configuration.config import TrainingSettings
    from aqi_assets.core.data.sources.prsa import prsa_source
    from aqi_assets.core.data.station_graph import build_station_graph
    from aqi_assets.core.training.candidate import train_candidate

    seeds = 0
    if "--seeds" in argv:
        at = argv.index("--seeds")
        seeds, argv = int(argv[at + 1]), argv[:at] + argv[at + 2:]
    models = argv[0].split(",") if argv else list(PREVIOUS_PRESETS)
    source = prsa_source(str(BEIJING))
    last = source.last_day()
    first = last - timedelta(days=WINDOW_DAYS - 1)
    frame = source.read_range(first, last)
    graph = build_station_graph(source.stations())
    settings = TrainingSettings(window_days=WINDOW_DAYS, validation_days=SPLIT_DAYS, holdout_days=SPLIT_DAYS)
    before = machine_info()
    if seeds:
        if models != ["xgboost"]:
            raise SystemExit("--seeds compares the XGBoost presets only: bench_preset_window xgboost --seeds N")
        result = {"window": {"first": first.isoformat(), "last": last.isoformat()}, "seeds": seeds,
                  "xgboost": seeded("xgboost", frame, graph, settings, seeds),
                  "load_avg_before": before["load_avg_1m"], "load_avg_after": machine_info()["load_avg_1m"],
                  "reproduce": f'make bench-preset-window BENCH_ARGS="xgboost --seeds {seeds}"'}
        write_result("preset_window_seeds", result)
        print(json.dumps(result, indent=1))
        return
    out: dict[str, dict] = {}
    for model in models:
        for label, overrides in (("shipped", {}), ("previous", PREVIOUS_PRESETS[model])):
            print(f"{model} ({label} preset) ...", flush=True)
            started = time.perf_counter()
            candidate = train_candidate(model, frame, graph, settings, **overrides)
            out.setdefault(model, {})[label] = {
                "rmse": round(candidate.metrics["rmse"], 3), "within_20": round(candidate.metrics["within_20"], 4),
                "train_seconds": round(candidate.train_seconds, 1), "train_cpu_seconds": round(candidate.train_cpu_seconds, 1),
                "overrides": overrides,
            }
            print(f"  RMSE {candidate.metrics['rmse']:.3f} in {time.perf_counter() - started:.0f} s", flush=True)
        shipped, previous = out[model]["shipped"], out[model]["previous"]
        out[model]["no_worse"] = shipped["rmse"] <= previous["rmse"]
    result = {
        "window": {"first": first.isoformat(), "last": last.isoformat(), "validation_days": SPLIT_DAYS,
                   "holdout_days": SPLIT_DAYS, "stations": int(frame["station"].nunique())},
        "models": out,
        "all_no_worse": all(m["no_worse"] for m in out.values()),
        "load_avg_before": before["load_avg_1m"], "load_avg_after": machine_info()["load_avg_1m"],
        "reproduce": "make bench-preset-window (= .venv/bin/python -m bench.bench_preset_window [models])",
    }
    write_result("preset_window", result)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
