"""``aqi-webserver``: the Dagster webserver served behind the API-token guard."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from pathlib import Path

from aqi_assets.server.auth import (
    PROTECT_READS_ENV,
    TOKEN_ENV,
    TOKEN_FILE_ENV,
    ApiToken,
    TokenConfigError,
    TokenGuard,
    load_token,
    protect_reads_from_env,
)
from aqi_assets.server.proxy import (
    TRUSTED_PROXIES_ENV,
    ForwardedHeaders,
    ProxyConfigError,
    TrustedProxies,
    trusted_proxies_from,
)

logger = logging.getLogger("aqi_assets.server")

# The same database settings dagster-webserver uses by default.
DB_STATEMENT_TIMEOUT_MS = 15000
DB_POOL_RECYCLE_SECONDS = 3600
DB_POOL_MAX_OVERFLOW = 20

NO_TOKEN_MESSAGE = f"""aqi-webserver: no API token configured; refusing to start.
Set {TOKEN_ENV} to a secret of at least 16 characters, or {TOKEN_FILE_ENV} to a file holding it:
    export {TOKEN_FILE_ENV}=~/.config/aqi/token   # chmod 600
Clients send it as 'Authorization: Bearer <token>'; the aqi-retrain CLI reads the same settings.
To serve without any access control (local experiments only), pass --insecure-no-token."""

INSECURE_WARNING = """
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
!!  WARNING: --insecure-no-token: anyone who can reach this port can launch and       !!
!!  terminate runs, change configuration and toggle sensors and schedules.             !!
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aqi-webserver",
        add_help=False,
        description="Serve the Dagster UI and GraphQL API; state changes need the API token.",
    )
    parser.add_argument("--help", action="help", help="show this help and exit")
    parser.add_argument("-w", "--workspace", default="workspace.yaml", help="workspace file (workspace.yaml)")
    parser.add_argument("-h", "--host", default="127.0.0.1", help="host to listen on (127.0.0.1)")
    parser.add_argument("-p", "--port", type=int, default=3000, help="port to listen on (3000)")
    parser.add_argument(
        "--protect-reads", action="store_true",
        help=f"require the token for reads as well (also {PROTECT_READS_ENV}=1)",
    )
    parser.add_argument(
        "--trusted-proxy", action="append", default=[], metavar="ADDRESS[/BITS]",
        help="a reverse proxy whose Forwarded/X-Forwarded-* headers are believed; repeatable or "
             f"comma-separated (also {TRUSTED_PROXIES_ENV}; default none)",
    )
    parser.add_argument(
        "--insecure-no-token", action="store_true",
        help="serve without access control when no token is configured (dangerous)",
    )
    parser.add_argument("--live-data-poll-rate", type=int, default=2000, help="UI poll rate in ms (2000)")
    parser.add_argument(
        "--uvicorn-log-level", default="warning",
        choices=["critical", "error", "warning", "info", "debug", "trace"],
    )
    return parser


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s - aqi-webserver - %(levelname)s - %(message)s"))
    logger.handlers = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False


def build_protected_app(workspace_process_context, token: ApiToken | None, *, protect_reads: bool,
                        trusted_proxies: TrustedProxies, live_data_poll_rate: int | None = 2000):
    """dagster-webserver's own ASGI app, wrapped in the token guard unless ``token`` is None, behind
    the forwarded-header handling (headers believed from ``trusted_proxies`` only)."""
    from dagster_webserver.app import create_app_from_workspace_process_context
    from dagster_webserver.cli import _lifespan

    app = create_app_from_workspace_process_context(
        workspace_process_context, "", live_data_poll_rate, lifespan=_lifespan
    )
    guarded = app if token is None else TokenGuard(app, token, protect_reads=protect_reads)
    return ForwardedHeaders(guarded, trusted_proxies)


def serve(args: argparse.Namespace, token: ApiToken | None, protect_reads: bool,
          trusted_proxies: TrustedProxies) -> int:
    """Load the instance (DAGSTER_HOME) and the workspace the way dagster-webserver does, then serve."""
    import uvicorn
    from dagster._cli.utils import get_instance_for_cli
    from dagster._cli.workspace.cli_target import workspace_opts_to_load_target
    from dagster._core.errors import DagsterHomeNotSetError
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._utils.log import configure_loggers
    from dagster_shared.cli import WorkspaceOpts
    from dagster_webserver.version import __version__

    configure_loggers(log_level="INFO")
    load_target = workspace_opts_to_load_target(WorkspaceOpts(workspace=[args.workspace]))
    with contextlib.ExitStack() as stack:
        try:
            instance = stack.enter_context(get_instance_for_cli(logger=logger))
        except DagsterHomeNotSetError as error:
            print(f"aqi-webserver: {error}", file=sys.stderr)
            return 2
        instance.optimize_for_webserver(
            DB_STATEMENT_TIMEOUT_MS, DB_POOL_RECYCLE_SECONDS, DB_POOL_MAX_OVERFLOW
        )
        context = stack.enter_context(WorkspaceProcessContext(
            instance, version=__version__, read_only=False, workspace_load_target=load_target
        ))
        app = build_protected_app(
            context, token, protect_reads=protect_reads, trusted_proxies=trusted_proxies,
            live_data_poll_rate=args.live_data_poll_rate,
        )
        access = (
            "no access control" if token is None
            else f"token from {token.source}; state changes need it; reads "
            + ("need it too" if protect_reads else "are open")
        )
        logger.info("serving http://%s:%d (%s; forwarded headers trusted from: %s); browser sign-in at /aqi/login",
                    args.host, args.port, access, trusted_proxies)
        # Forwarded headers are ForwardedHeaders' business: uvicorn's own handling would believe
        # them from any local peer and rewrite the client address the proxy check relies on.
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.uvicorn_log_level, proxy_headers=False)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging()
    try:
        token = load_token()
        trusted_proxies = trusted_proxies_from(args.trusted_proxy)
    except (TokenConfigError, ProxyConfigError) as error:
        print(f"aqi-webserver: {error}", file=sys.stderr)
        return 2
    if token is None and not args.insecure_no_token:
        print(NO_TOKEN_MESSAGE, file=sys.stderr)
        return 2
    if token is None:
        print(INSECURE_WARNING, file=sys.stderr, flush=True)
    if not Path(args.workspace).is_file():
        print(f"aqi-webserver: workspace file not found: {args.workspace}", file=sys.stderr)
        return 2
    # Code servers and run workers are started from this process: they need no token.
    os.environ.pop(TOKEN_ENV, None)
    return serve(args, token, protect_reads=args.protect_reads or protect_reads_from_env(),
                 trusted_proxies=trusted_proxies)


if __name__ == "__main__":
    sys.exit(main())
