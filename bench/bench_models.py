"""Benchmark: the three forecasters against persistence on the real Beijing data (next-hour PM2.5).

Train on 2013-03-01..2016-02-29 (the last ``VALID_DAYS`` of it as the early-stopping slice),
test on forecasts whose target hour falls in 2016-03-01..2017-02-28, 12 stations pooled. Each
model runs in a fresh process, so ``train_seconds`` (wall) and ``peak_rss_mb`` (peak RSS while
fitting, data included) are its own. Writes ``bench/results/models.json``
(``{model: {rmse, mae, within_20, aqi_category_accuracy, train_seconds, peak_rss_mb}}``) and
``bench/results/models_detail.json`` (rows scored, persistence on the same rows, training
reports), and prints a table.

    python -m bench.bench_models                       # all, with the full presets
    python -m bench.bench_models --models xgboost,gnn  # a subset (others keep their old figures)
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import date
from pathlib import Path

from bench.common import PeakMemory, RESULTS_DIR, Stopwatch, format_table, max_rss_mb, run_module_in_child, write_result

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "beijing"
TRAIN_START, TRAIN_END = date(2013, 3, 1), date(2016, 2, 29)
VALID_START = date(2015, 12, 1)  # the last 91 days of the training period
TEST_START, TEST_END = date(2016, 3, 1), date(2017, 2, 28)
MODELS: tuple[str, ...] = ("persistence", "xgboost", "lstm", "gnn")
SUMMARY_KEYS: tuple[str, ...] = ("rmse", "mae", "within_20", "aqi_category_accuracy", "train_seconds", "peak_rss_mb")
CHILD_TIMEOUT_SECONDS = 1800


def run_one(model: str, data_dir: Path) -> dict:
    """Fit and score one model in this process (what each child runs)."""
    import pandas as pd

    from aqi_assets.core.forecasting import ForecastSpec, evaluate, make_forecaster, persistence_metrics
    from aqi_assets.core.schema import TIMESTAMP
    from aqi_assets.core.sources.prsa import prsa_source
    from aqi_assets.core.station_graph import build_station_graph

    source = prsa_source(str(data_dir))
    frame = source.read_range(TRAIN_START, TEST_END)
    stamps = frame[TIMESTAMP]
    spec = ForecastSpec(target="pm25", horizon_hours=1)
    lookback_start = pd.Timestamp(TEST_START) - pd.Timedelta(days=4)
    test_frame = frame[stamps >= lookback_start]
    if model == "persistence":
        metrics = persistence_metrics(frame, spec.target, spec.horizon_hours, TEST_START, TEST_END)
        return {"metrics": metrics, "train_seconds": 0.0, "peak_rss_mb": max_rss_mb(), "report": {}}
    train = frame[stamps < pd.Timestamp(VALID_START)]
    valid = frame[(stamps >= pd.Timestamp(VALID_START)) & (stamps < pd.Timestamp(TEST_START))]
    graph = build_station_graph(source.stations())
    forecaster = make_forecaster(model, spec, preset="full")
    with PeakMemory() as memory, Stopwatch() as clock:
        report = forecaster.fit(train, valid, graph, progress=lambda message: print(message, flush=True))
    metrics = evaluate(forecaster, test_frame, TEST_START, TEST_END)
    report.pop("history", None)
    return {"metrics": metrics, "train_seconds": clock.seconds, "train_cpu_seconds": clock.cpu_seconds,
            "peak_rss_mb": memory.peak_mb, "report": report, "hyperparams": forecaster.params()}


def summary(model: str, result: dict) -> dict:
    m = result["metrics"]
    return {"rmse": round(m["rmse"], 3), "mae": round(m["mae"], 3), "within_20": round(m["within_20"], 4),
            "aqi_category_accuracy": round(m["aqi_category_accuracy"], 4),
            "train_seconds": round(result["train_seconds"], 1), "peak_rss_mb": round(result["peak_rss_mb"], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of " + ",".join(MODELS))
    parser.add_argument("--data", default=str(DATA_DIR), help="directory of the PRSA_Data_*.csv.gz files")
    parser.add_argument("--one", choices=MODELS, help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # child process
        Path(args.output).write_text(json.dumps(run_one(args.one, Path(args.data)), default=float))
        return

    chosen = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(chosen) - set(MODELS))
    if unknown:
        parser.error(f"unknown model(s) {unknown}")
    summaries = _previous("models")
    details = _previous("models_detail")
    for model in chosen:
        print(f"== {model}", flush=True)
        result = run_module_in_child("bench.bench_models", ["--one", model, "--data", args.data],
                                     timeout=CHILD_TIMEOUT_SECONDS)
        summaries[model] = summary(model, result)
        details[model] = result
    ordered = {m: summaries[m] for m in MODELS if m in summaries}
    write_result("models", ordered)
    write_result("models_detail", {m: details[m] for m in MODELS if m in details})
    rows = [{"model": m, **s, "within_20": 100 * s["within_20"],
             "aqi_category_accuracy": 100 * s["aqi_category_accuracy"]} for m, s in ordered.items()]
    print(format_table(rows, ("model",) + SUMMARY_KEYS,
                       {"rmse": ".2f", "mae": ".2f", "within_20": ".1f", "aqi_category_accuracy": ".1f",
                        "train_seconds": ".1f", "peak_rss_mb": ".0f"}))
    print(f"(within_20 and aqi_category_accuracy in %; results in {RESULTS_DIR / 'models.json'})")


def _previous(name: str) -> dict:
    path = RESULTS_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else {}


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
