"""Arguments and dispatch of the control commands, which drive a running platform over GraphQL."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date

from aqi_assets.cli.graphql import DEFAULT_URL, URL_ENV

CONTROL_COMMANDS = ("status", "check", "trigger", "history", "config", "metrics", "selftest", "rollback", "ingest")


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help=f"Dagster webserver (default ${URL_ENV} or {DEFAULT_URL})")
    common.add_argument("--json", action="store_true", help="print JSON for scripts instead of tables")
    return common


def _waiting(parser: argparse.ArgumentParser, default_timeout: float = 3600) -> None:
    parser.add_argument("--wait", action="store_true", help="wait for the run to finish and print its outcome")
    parser.add_argument("--timeout", type=float, default=default_timeout,
                        help=f"seconds to wait for the run (default {default_timeout:.0f})")


def add_control_parsers(commands) -> None:
    """Add the GraphQL-backed subcommands to ``aqi-retrain``'s subparsers."""
    common = _common()
    commands.add_parser("status", parents=[common],
                        help="sensors and schedules, retrainings in flight, each model's champion")
    commands.add_parser("check", parents=[common],
                        help="evaluate every trigger sensor now and show what would fire (launches nothing)")

    trigger = commands.add_parser("trigger", parents=[common], help="retrain one model now (manual_retraining)")
    trigger.add_argument("--model", required=True, help="xgboost, lstm or gnn")
    trigger.add_argument("--reason", required=True, help="why (recorded with the run and the promotion)")
    trigger.add_argument("--severity", default="medium", choices=["low", "medium", "high", "critical"])
    _waiting(trigger)

    history = commands.add_parser("history", parents=[common],
                                  help="retraining runs: trigger, outcome, gates, promotion")
    history.add_argument("--days", type=int, default=30, help="look back this many days (default 30)")
    history.add_argument("--model", help="with --promotions: xgboost, lstm or gnn")
    history.add_argument("--promotions", action="store_true",
                         help="every change of the model's serving version (from → to, trigger, reason, RMSE)")

    config = commands.add_parser("config", help="show or change the retraining configuration")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    config_commands.add_parser("show", parents=[common], help="the configuration in force, every setting")
    config_set = config_commands.add_parser("set", parents=[common],
                                            help="change settings (validated and recorded as a new version)")
    config_set.add_argument("assignments", nargs="*", metavar="key=value", help="e.g. gates.max_rmse=22")
    config_set.add_argument("--reset", action="store_true", help="start from the built-in defaults")
    config_set.add_argument("--timeout", type=float, default=600, help="seconds to wait for the change (600)")

    metrics = commands.add_parser("metrics", parents=[common],
                                  help="trigger-check and retraining success rates, duration, promotion rate")
    metrics.add_argument("--days", type=int, default=30, help="look back this many days (default 30)")

    selftest = commands.add_parser("selftest", parents=[common],
                                   help="prove the installation works: launch a cheap run and see it succeed")
    selftest.add_argument("--timeout", type=float, default=300, help="seconds to wait for the run (300)")

    rollback = commands.add_parser("rollback", parents=[common],
                                   help="move a model's champion back to the previous version")
    rollback.add_argument("--model", required=True, help="xgboost, lstm or gnn")
    rollback.add_argument("--reason", default="rollback requested from aqi-retrain", help="why (recorded)")
    rollback.add_argument("--to-version", help="target version (default: the previous champion)")
    _waiting(rollback)

    ingest = commands.add_parser("ingest", parents=[common],
                                 help="ingest a range of days (a backfill of ingest_day), with a progress bar")
    ingest.add_argument("--from", dest="first", required=True, type=date.fromisoformat, help="first day (YYYY-MM-DD)")
    ingest.add_argument("--to", dest="last", required=True, type=date.fromisoformat, help="last day (YYYY-MM-DD)")
    ingest.add_argument("--no-wait", action="store_true", help="launch the backfill and return")
    ingest.add_argument("--timeout", type=float, default=24 * 3600, help="seconds to follow the backfill")


def run_control_command(args: argparse.Namespace) -> int:
    """Run one control command; print its table (or JSON) and return the exit code."""
    from aqi_assets.cli import commands
    from aqi_assets.cli.graphql import ApiError, DagsterApi

    try:
        if args.command in ("trigger", "rollback"):
            commands.validate_model(args.model)  # before contacting the server
        api = DagsterApi(args.url)
        if args.command == "status":
            result = commands.status(api)
        elif args.command == "check":
            result = commands.check(api)
        elif args.command == "trigger":
            result = commands.trigger(api, args.model, args.reason, args.severity, args.wait, args.timeout)
        elif args.command == "history" and args.promotions:
            if not args.model:
                raise ApiError("history --promotions needs --model (xgboost, lstm or gnn)")
            result = commands.promotion_history(api, args.model)
        elif args.command == "history":
            result = commands.history(api, args.days)
        elif args.command == "metrics":
            result = commands.metrics(api, args.days)
        elif args.command == "selftest":
            result = commands.selftest(api, args.timeout)
        elif args.command == "rollback":
            result = commands.rollback(api, args.model, args.reason, args.to_version, args.wait, args.timeout)
        elif args.command == "ingest":
            from aqi_assets.cli.ingest import ingest

            result = ingest(api, args.first, args.last, wait=not args.no_wait, timeout=args.timeout,
                            progress=not args.json)
        elif args.config_command == "show":
            result = commands.config_show(api)
        else:
            result = commands.config_set(api, args.assignments, args.reset, args.timeout)
    except ApiError as error:
        print(f"aqi-retrain {args.command}: error: {error}", file=sys.stderr)
        return error.exit_code
    print(json.dumps(result.data, indent=2, default=str) if args.json else result.text)
    return result.exit_code
