"""``aqi-retrain backtest``: replay a source under retraining policies and write the table, JSON and plot."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date, timedelta
from pathlib import Path

DEFAULT_POLICIES = "never,fixed_7,fixed_30,seed_raw,default"


def add_backtest_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``backtest`` command on the ``aqi-retrain`` sub-command parsers."""
    parser = subparsers.add_parser(
        "backtest",
        help="replay a source day by day under retraining policies",
        description="Replay a source day by day: every policy starts from one model trained on the "
        "window before --start, is scored each day like the live model and retrains when its rule "
        "says so. Prints RMSE (pooled over the replay), retrains and training CPU per policy.",
    )
    parser.add_argument("--source", default=None,
                        help="source spec (default: AQI_SOURCE, else the simulated city)")
    parser.add_argument("--start", type=date.fromisoformat, default=None,
                        help="first replay day (default: one training window after the source's first day)")
    parser.add_argument("--end", type=date.fromisoformat, default=None,
                        help="last replay day (default: the source's last complete day)")
    parser.add_argument("--policies", default=DEFAULT_POLICIES,
                        help="comma-separated: never, fixed_<days>, seed_raw, default, drift, default+drift; "
                        "triggered ones take ':key=value+key=value' performance overrides "
                        f"(default: {DEFAULT_POLICIES})")
    parser.add_argument("--out", type=Path, default=Path("backtest-results"),
                        help="folder for backtest.md, backtest.json, backtest.png, backtest_daily.csv")
    parser.add_argument("--model", default="xgboost", choices=("xgboost", "lstm", "gnn"))
    parser.add_argument("--window-days", type=int, default=None,
                        help="training window in days (default: the config's, 365)")
    parser.add_argument("--preset", choices=("full", "fast"), default="full",
                        help="'fast' trains tiny models for demos")
    parser.add_argument("--fit-on", choices=("window", "split"), default="window",
                        help="window: fit on the whole window; split: train/validation/holdout as a live candidate")
    parser.add_argument("--hyper", action="append", default=[], metavar="KEY=VALUE",
                        help="model hyperparameter override (repeatable), e.g. --hyper n_estimators=300")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="save fitted models here and reuse them in later replays with the same settings")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def run_backtest_command(args: argparse.Namespace) -> int:
    """Run the replay the arguments describe; print the table and where the files went (0 = ok)."""
    # Idle OpenMP workers (XGBoost) would otherwise spin and count as training CPU time; this
    # takes effect when the trainer library is first loaded, later in this call.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from aqi_assets.core.backtest import BacktestSettings, backtest_source, results_table, write_outputs
    from aqi_assets.core.backtest_policies import policies_from_names
    from aqi_assets.core.config import RetrainingConfig
    from aqi_assets.core.sources import SourceError, source_from_spec

    try:
        config = RetrainingConfig()
        training = config.training
        if args.window_days is not None:
            training = _training_with_window(training, args.window_days)
        training = training.model_copy(update={"preset": args.preset})
        policies = policies_from_names(args.policies, config)
        source = source_from_spec(args.source)
        end = args.end or source.last_day()
        if end is None:
            raise ValueError(f"the source {source.spec!r} has no data yet")
        start = args.start or source.first_day() + timedelta(days=training.window_days)
        hyperparams = _parse_hyper(args.hyper)
        settings = BacktestSettings(start=start, end=end, kind=args.model, training=training,
                                    hyperparams=hyperparams or None, fit_on=args.fit_on)
    except (ValueError, SourceError) as exc:
        print(f"aqi-retrain backtest: {exc}", file=sys.stderr)
        return 2
    print(f"Replaying {source.spec} {start}..{end} ({len(settings.days)} days) under "
          f"{', '.join(p.name for p in policies)}", flush=True)
    bar = None if args.quiet else _progress_bar(len(settings.days))
    try:
        backtest = backtest_source(source, policies, settings, progress=bar, cache_dir=args.cache_dir)
    except (ValueError, SourceError) as exc:
        print(f"aqi-retrain backtest: {exc}", file=sys.stderr)
        return 2
    finally:
        if bar is not None:
            bar.close()
    paths = write_outputs(backtest, args.out)
    print(results_table(backtest))
    print(f"RMSE pooled over every forecast of the replay; {backtest.fits} models fitted "
          f"({backtest.fit_cpu_seconds:.0f} CPU s) in {backtest.wall_seconds:.0f} s")
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0


def _training_with_window(training, window_days: int):
    from aqi_assets.core.config import TrainingSettings

    # Keep the validation and holdout slices inside a short window.
    part = max(1, min(training.validation_days, (window_days - 1) // 3))
    return TrainingSettings(**{**training.model_dump(), "window_days": window_days,
                               "validation_days": part, "holdout_days": part})


def _parse_hyper(items: list[str]) -> dict:
    out: dict = {}
    for item in items:
        key, eq, value = (part.strip() for part in item.partition("="))
        if not eq or not key:
            raise ValueError(f"--hyper {item!r} is not KEY=VALUE")
        out[key] = _number(value)
    return out


def _number(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


class _progress_bar:
    """A tqdm bar over replay days showing the latest message (a fit, a replayed day)."""

    def __init__(self, total: int):
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="day", file=sys.stderr, dynamic_ncols=True)

    def __call__(self, done: int, total: int, message: str) -> None:
        self.bar.n = done
        self.bar.set_postfix_str(message, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()
