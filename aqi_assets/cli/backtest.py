"""``aqi-retrain backtest``: replay a source under retraining policies and write the table, JSON and plot."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date, timedelta
from pathlib import Path

from aqi_assets.core.configuration.config import TrainingSettings

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
    parser.add_argument("--config", choices=("instance", "defaults"), default="instance",
                        help="instance (default): the retraining_config recorded in the platform's lake "
                        "($AQI_LAKE_DIR or $DAGSTER_HOME/lake), if any; defaults: the built-in settings")
    for name, field in TrainingSettings.model_fields.items():
        parser.add_argument(f"--{name.replace('_', '-')}", dest=f"training_{name}", default=None,
                            metavar=name.split("_")[-1].upper(),
                            help=f"training.{name}: {field.description or ''} (default: the config's)".replace(": (", " ("))
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
    from aqi_assets.core.backtest.replay import BacktestSettings, backtest_source, results_table, write_outputs
    from aqi_assets.core.backtest.policies import policies_from_names
    from aqi_assets.core.data.sources import SourceError, source_from_spec

    try:
        config, origin = _config(args.config)
        config = config.with_overrides(_training_overrides(args, config.training))
        training = config.training
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
    print(f"Settings: {origin}; target {training.target}, horizon {training.horizon_hours} h, window "
          f"{training.window_days} days, {training.preset} preset", flush=True)
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


def _config(which: str):
    """The settings a replay uses and a sentence saying where they come from."""
    from aqi_assets.core.configuration.config import DEFAULT_CONFIG
    from aqi_assets.core.configuration.store import current_config, current_record
    from aqi_assets.core.data.lake import Lake
    from aqi_assets.core.configuration.settings import lake_root

    if which == "defaults":
        return DEFAULT_CONFIG, "the built-in defaults (--config defaults)"
    lake = Lake(lake_root())
    version = current_record(lake)["version"]
    if not version:
        return DEFAULT_CONFIG, f"the built-in defaults (no retraining_config recorded in {lake.root})"
    return current_config(lake), f"retraining_config v{version} recorded in {lake.root} (--config defaults ignores it)"


def _training_overrides(args: argparse.Namespace, training) -> dict:
    """``training.*`` edits from the command line; a shorter window also shrinks the validation and
    holdout slices when they are not given and would not fit."""
    edits = {f"training.{name}": value for name in type(training).model_fields
             if (value := getattr(args, f"training_{name}")) is not None}
    window = edits.get("training.window_days")
    if window is not None and "training.validation_days" not in edits and "training.holdout_days" not in edits:
        part = max(1, min(training.validation_days, (int(window) - 1) // 3))
        if training.validation_days + training.holdout_days >= int(window):
            edits.update({"training.validation_days": part, "training.holdout_days": part})
    return edits


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
