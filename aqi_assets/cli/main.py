"""``aqi-retrain``: argument parsing and dispatch to one function per command."""

from __future__ import annotations

import argparse
import sys

from aqi_assets.cli.backtest import add_backtest_parser, run_backtest_command
from aqi_assets.cli.control import CONTROL_COMMANDS, add_control_parsers, run_control_command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aqi-retrain", description="Operate the AQI retraining platform (Dagster + MLflow)."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="replay simulated days through a live Dagster instance")
    demo.add_argument("--days", type=int, default=28, help="new days to replay (default 28)")
    demo.add_argument("--warmup-days", type=int, default=28,
                      help="days ingested before the first models are trained, on a fresh platform (default 28)")
    add_backtest_parser(commands)
    add_control_parsers(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from aqi_assets.cli.demo import run_demo

        return run_demo(days=args.days, warmup_days=args.warmup_days)
    if args.command == "backtest":
        return run_backtest_command(args)
    if args.command in CONTROL_COMMANDS:
        return run_control_command(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
