"""API-token access control for the webserver: token settings, the mutation detector and the ASGI guard."""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import logging
import os
import secrets
import stat
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from graphql import OperationDefinitionNode, OperationType, parse
from starlette.datastructures import Headers, QueryParams
from starlette.requests import cookie_parser

TOKEN_ENV = "AQI_API_TOKEN"
TOKEN_FILE_ENV = "AQI_API_TOKEN_FILE"
PROTECT_READS_ENV = "AQI_PROTECT_READS"
MIN_TOKEN_LENGTH = 16
HINT = f"send Authorization: Bearer <token> ({TOKEN_ENV})"

SESSION_COOKIE = "aqi_session"
SESSION_SECONDS = 12 * 3600
LOGIN_PATH = "/aqi/login"
LOGOUT_PATH = "/aqi/logout"
GRAPHQL_PATH = "/graphql"
# Open even with protected reads: version numbers only, and what health probes poll.
HEALTH_PATHS = frozenset({"/server_info"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# An anonymous GraphQL body larger than this is not inspected: it needs the token.
MAX_INSPECTED_BODY = 4 * 1024 * 1024
MAX_LOGIN_BODY = 8 * 1024

logger = logging.getLogger("aqi_assets.server")

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


# ---------------------------------------------------------------- token settings


class TokenConfigError(Exception):
    """The token settings are present but unusable (the message never contains the token)."""


class ApiToken:
    """The shared secret; its text never appears in ``repr``, ``str`` or messages."""

    __slots__ = ("_digest", "_secret", "source")

    def __init__(self, value: str, source: str):
        if len(value) < MIN_TOKEN_LENGTH:
            raise TokenConfigError(
                f"{source}: the token must be at least {MIN_TOKEN_LENGTH} characters "
                "(generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        if not all(0x21 <= ord(ch) <= 0x7E for ch in value):
            raise TokenConfigError(
                f"{source}: the token may contain only printable ASCII characters without spaces"
            )
        self._secret = value.encode("ascii")
        self._digest = hashlib.sha256(self._secret).digest()
        self.source = source

    def matches(self, presented: bytes | str) -> bool:
        """Constant-time comparison; hashing first hides the token's length as well."""
        if isinstance(presented, str):
            presented = presented.encode("utf-8", "surrogateescape")
        return hmac.compare_digest(self._digest, hashlib.sha256(presented).digest())

    def authorization_header(self) -> str:
        return "Bearer " + self._secret.decode("ascii")

    def __repr__(self) -> str:
        return f"ApiToken(source={self.source!r}, value=<redacted>)"

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("ApiToken is not serialisable")


def load_token(environ: Mapping[str, str] | None = None) -> ApiToken | None:
    """The token from ``AQI_API_TOKEN`` or the file named by ``AQI_API_TOKEN_FILE``; None when unset."""
    env = os.environ if environ is None else environ
    value = env.get(TOKEN_ENV, "").strip()
    file_name = env.get(TOKEN_FILE_ENV, "").strip()
    if value and file_name:
        raise TokenConfigError(f"set either {TOKEN_ENV} or {TOKEN_FILE_ENV}, not both")
    if value:
        return ApiToken(value, source=TOKEN_ENV)
    if not file_name:
        return None
    path = Path(file_name).expanduser()
    source = f"{TOKEN_FILE_ENV}={path}"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TokenConfigError(f"{source}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise TokenConfigError(f"{source}: cannot read the token file ({type(error).__name__})") from None
    text = text.strip()
    if not text:
        raise TokenConfigError(f"{source}: the token file is empty")
    if os.name == "posix" and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning("%s is readable by other users; chmod 600 it", path)
    return ApiToken(text, source=source)


def auth_headers(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``{"Authorization": "Bearer ..."}`` from the token settings, or ``{}`` when none is set."""
    token = load_token(environ)
    return {"Authorization": token.authorization_header()} if token else {}


def protect_reads_from_env(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return env.get(PROTECT_READS_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


# ---------------------------------------------------------------- mutation detector


@dataclass(frozen=True)
class GraphQLVerdict:
    """Whether a GraphQL request may change state, with the operation names found (for logs)."""

    changes_state: bool
    operations: tuple[str, ...] = ()
    reason: str = ""


def _document_operations(text: object) -> list[tuple[OperationType, str]]:
    """(type, name) of every operation in a document; ValueError when it is not a parseable document."""
    if not isinstance(text, str):
        raise ValueError("query is not a string")
    try:
        document = parse(text)
    except Exception as error:  # GraphQLError, RecursionError on absurd nesting, ...
        raise ValueError(f"unparseable GraphQL ({type(error).__name__})") from None
    return [
        (d.operation, d.name.value if d.name else "<anonymous>")
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode)
    ]


def classify_queries(queries: Iterable[object]) -> GraphQLVerdict:
    """A set of documents changes state if any contains a mutation or any cannot be parsed.

    The operation name a client selects is deliberately ignored: a document that carries a
    mutation needs the token even when the operation picked to run is a query.
    """
    names: list[str] = []
    mutates = False
    for query in queries:
        try:
            operations = _document_operations(query)
        except ValueError as error:
            return GraphQLVerdict(True, tuple(names), str(error))
        for operation, name in operations:
            names.append(f"{operation.value} {name}")
            mutates = mutates or operation is OperationType.MUTATION
    return GraphQLVerdict(mutates, tuple(names), "GraphQL mutation" if mutates else "")


def _queries_from_json(body: bytes) -> list[object]:
    """The ``query`` of a single JSON request object or of every object in a batched list."""
    try:
        data = json.loads(body)
    except ValueError:
        raise ValueError("body is not valid JSON") from None
    items = data if isinstance(data, list) else [data]
    if not items or not all(isinstance(item, dict) for item in items):
        raise ValueError("JSON body is not a GraphQL request object or a list of them")
    if any("query" not in item for item in items):
        raise ValueError("JSON body has no query")
    return [item["query"] for item in items]


def classify_graphql_request(
    method: str, query_string: bytes = b"", content_type: str = "", body: bytes = b""
) -> GraphQLVerdict:
    """Decide whether an HTTP request to the GraphQL endpoint may change state.

    Looks wherever dagster-webserver may take a query from: the query string (GET, and POSTs
    that are neither JSON nor ``application/graphql``), a JSON body (one object or a batched
    list) or an ``application/graphql`` body. A POST whose body cannot be understood, or that
    carries no query at all, is treated as state-changing.
    """
    queries: list[object] = list(QueryParams(query_string.decode("latin-1")).getlist("query"))
    if method in SAFE_METHODS:
        return classify_queries(queries)
    if method != "POST":
        return GraphQLVerdict(True, reason=f"{method} to the GraphQL endpoint")
    try:
        if "application/json" in content_type:
            queries += _queries_from_json(body)
        elif "application/graphql" in content_type:
            queries.append(body.decode("utf-8"))
        elif body.strip():
            raise ValueError("unrecognised GraphQL body")
    except (ValueError, UnicodeDecodeError) as error:
        return GraphQLVerdict(True, reason=str(error))
    if not queries:
        return GraphQLVerdict(True, reason="GraphQL POST without a query")
    return classify_queries(queries)


def classify_graphql_ws_frame(message: Message) -> GraphQLVerdict:
    """A websocket frame of the graphql-ws protocol: only ``start`` frames run documents."""
    raw = message.get("text")
    if raw is None:
        raw = message.get("bytes") or b""
    try:
        frame = json.loads(raw)
    except ValueError:
        return GraphQLVerdict(True, reason="websocket frame is not JSON")
    if not isinstance(frame, dict):
        return GraphQLVerdict(True, reason="websocket frame is not a JSON object")
    if frame.get("type") != "start":
        return GraphQLVerdict(False)
    payload = frame.get("payload")
    if not isinstance(payload, dict):
        return GraphQLVerdict(True, reason="websocket start frame without a payload")
    return classify_queries([payload.get("query")])


# ---------------------------------------------------------------- browser sessions


@dataclass
class SessionStore:
    """Server-side browser sessions: random ids, kept as hashes, ended by logout or expiry."""

    lifetime_seconds: int = SESSION_SECONDS
    max_sessions: int = 10_000
    _expiry_by_digest: dict[bytes, float] = field(default_factory=dict)

    @staticmethod
    def _digest(session_id: str) -> bytes:
        return hashlib.sha256(session_id.encode("utf-8", "surrogateescape")).digest()

    def create(self) -> str:
        now = time.time()
        self._expiry_by_digest = {d: e for d, e in self._expiry_by_digest.items() if e > now}
        while len(self._expiry_by_digest) >= self.max_sessions:
            self._expiry_by_digest.pop(next(iter(self._expiry_by_digest)))
        session_id = secrets.token_urlsafe(32)
        self._expiry_by_digest[self._digest(session_id)] = now + self.lifetime_seconds
        return session_id

    def is_valid(self, session_id: str) -> bool:
        expiry = self._expiry_by_digest.get(self._digest(session_id))
        return expiry is not None and expiry > time.time()

    def end(self, session_id: str) -> None:
        self._expiry_by_digest.pop(self._digest(session_id), None)

    def __len__(self) -> int:
        return len(self._expiry_by_digest)


# ---------------------------------------------------------------- the ASGI guard


def _printable(text: str, limit: int = 80) -> str:
    """Caller-supplied text made safe for a log line."""
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in text)
    return cleaned if len(cleaned) <= limit else cleaned[:limit] + "..."


def _same_origin(headers: Headers) -> bool:
    """False when a browser says the request comes from another origin.

    SameSite=Strict keeps the session cookie off cross-site requests, but a sibling subdomain
    counts as the same site; the Origin header tells them apart. Requests without it (page
    navigations, non-browser clients) pass.
    """
    origin = headers.get("origin")
    if origin is None:
        return True
    netloc = urlsplit(origin).netloc.lower()
    hosts = {headers.get("host", "").lower(), headers.get("x-forwarded-host", "").lower()} - {""}
    return origin != "null" and netloc in hosts


def _safe_next(target: str) -> str:
    """A post-login redirect target on this site only."""
    if target.startswith("/") and not target.startswith(("//", "/\\")) and target.isprintable():
        return target
    return "/"


@dataclass
class _Credentials:
    presented_bearer: bool = False
    bearer_ok: bool = False
    session_ok: bool = False

    @property
    def authorised(self) -> bool:
        return self.bearer_ok or self.session_ok


class TokenGuard:
    """ASGI middleware: requests that may change state (and, optionally, reads) need the token.

    Accepts ``Authorization: Bearer <token>`` or, on same-origin requests, the session cookie
    issued by ``/aqi/login``.
    A refused request is answered here with 401 and never reaches the wrapped app.
    """

    def __init__(
        self,
        app: ASGIApp,
        token: ApiToken,
        *,
        protect_reads: bool = False,
        sessions: SessionStore | None = None,
    ):
        self.app = app
        self.token = token
        self.protect_reads = protect_reads
        self.sessions = sessions if sessions is not None else SessionStore()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    # -- credentials

    def _credentials(self, headers: Headers) -> _Credentials:
        credentials = _Credentials()
        for value in headers.getlist("authorization"):
            scheme, _, presented = value.strip().partition(" ")
            if scheme.lower() == "bearer":
                credentials.presented_bearer = True
                if self.token.matches(presented.strip().encode("latin-1")):
                    credentials.bearer_ok = True
        session_id = cookie_parser(headers.get("cookie", "")).get(SESSION_COOKIE)
        if session_id and self.sessions.is_valid(session_id) and _same_origin(headers):
            credentials.session_ok = True
        return credentials

    @staticmethod
    def _without_authorization(scope: Scope) -> Scope:
        """The scope passed on: the token goes no further than this guard."""
        headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"authorization"]
        return {**scope, "headers": headers}

    def _log_refusal(self, scope: Scope, reason: str, operations: Iterable[str] = ()) -> None:
        client = scope.get("client")
        address = f"{client[0]}:{client[1]}" if client else "unknown"
        names = ", ".join(_printable(name, 64) for name in list(operations)[:10]) or "-"
        logger.warning(
            "refused %s %s (operations: %s) from %s: %s",
            scope.get("method", "WEBSOCKET"), _printable(scope.get("path", ""), 200), names, address, reason,
        )

    # -- HTTP

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        if path == LOGIN_PATH:
            await self._login(scope, receive, send)
            return
        if path == LOGOUT_PATH:
            await self._logout(scope, receive, send)
            return

        headers = Headers(scope=scope)
        credentials = self._credentials(headers)
        if credentials.authorised:
            await self.app(self._without_authorization(scope), receive, send)
            return

        if path == GRAPHQL_PATH:
            verdict, receive = await self._inspect_graphql(scope, headers, receive)
        else:
            verdict = GraphQLVerdict(method not in SAFE_METHODS, reason=f"{method} request")

        if credentials.presented_bearer:
            refusal = "the presented token is not valid"
        elif verdict.changes_state:
            refusal = f"a token is required to change state ({verdict.reason})"
        elif self.protect_reads and path not in HEALTH_PATHS:
            refusal = "a token is required to read (reads are protected)"
        else:
            await self.app(scope, receive, send)
            return
        self._log_refusal(scope, refusal, verdict.operations)
        await _refuse(send, refusal, headers, invalid_token=credentials.presented_bearer)

    @staticmethod
    async def _inspect_graphql(
        scope: Scope, headers: Headers, receive: Receive
    ) -> tuple[GraphQLVerdict, Receive]:
        """Classify a GraphQL request; a POST body read for that is handed on to the app afterwards."""
        method = scope["method"]
        body = b""
        if method == "POST":
            body, complete = await _read_body(receive, MAX_INSPECTED_BODY)
            if not complete:
                return GraphQLVerdict(True, reason="GraphQL body too large to inspect"), receive
            receive = _replay(body, receive)
        verdict = classify_graphql_request(
            method, scope.get("query_string", b""), headers.get("content-type", ""), body
        )
        return verdict, receive

    async def _login(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        params = QueryParams(scope.get("query_string", b"").decode("latin-1"))
        if method in {"GET", "HEAD"}:
            await _send_html(send, 200, _login_page(_safe_next(params.get("next", "/"))))
            return
        if method != "POST":
            await _send_html(send, 405, "<p>Method not allowed</p>", {"allow": "GET, POST"})
            return
        body, complete = await _read_body(receive, MAX_LOGIN_BODY)
        form = dict(parse_qsl(body.decode("utf-8", "replace"))) if complete else {}
        target = _safe_next(form.get("next", "/"))
        if not self.token.matches(form.get("token", "").strip()):
            self._log_refusal(scope, "wrong token on the login form")
            await _send_html(send, 401, _login_page(target, failed=True))
            return
        session_id = self.sessions.create()
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        cookie = (
            f"{SESSION_COOKIE}={session_id}; Path=/; Max-Age={self.sessions.lifetime_seconds}; "
            f"HttpOnly; SameSite=Strict{secure}"
        )
        await _send_redirect(send, target, cookie)

    async def _logout(self, scope: Scope, receive: Receive, send: Send) -> None:
        session_id = cookie_parser(Headers(scope=scope).get("cookie", "")).get(SESSION_COOKIE)
        if session_id:
            self.sessions.end(session_id)
        cookie = f"{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"
        await _send_redirect(send, LOGIN_PATH, cookie)

    # -- websocket

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        credentials = self._credentials(Headers(scope=scope))
        if credentials.authorised:
            await self.app(self._without_authorization(scope), receive, send)
            return
        if credentials.presented_bearer or self.protect_reads:
            reason = ("the presented token is not valid" if credentials.presented_bearer
                      else "a token is required to read (reads are protected)")
            self._log_refusal(scope, reason)
            await _deny_websocket(scope, receive, send, reason)
            return

        closed = False

        async def guarded_receive() -> Message:
            nonlocal closed
            message = await receive()
            if message["type"] != "websocket.receive" or closed:
                return message
            verdict = classify_graphql_ws_frame(message)
            if not verdict.changes_state:
                return message
            self._log_refusal(scope, f"a token is required to change state ({verdict.reason})",
                              verdict.operations)
            closed = True
            await send({"type": "websocket.close", "code": 4401, "reason": "token required"})
            return {"type": "websocket.disconnect", "code": 4401}

        async def guarded_send(message: Message) -> None:
            if not closed:
                await send(message)

        await self.app(scope, guarded_receive, guarded_send)


# ---------------------------------------------------------------- ASGI plumbing


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, bool]:
    """The request body, and False when it exceeds ``limit`` (reading stops there)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), True
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return b"", False
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the already-read body to the app once, then defers to the server."""
    pending = True

    async def replayed() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _send(send: Send, status: int, body: bytes, headers: Mapping[str, str]) -> None:
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _www_authenticate(invalid_token: bool) -> str:
    return 'Bearer realm="aqi-webserver"' + (', error="invalid_token"' if invalid_token else "")


async def _refuse(send: Send, error: str, headers: Headers, *, invalid_token: bool) -> None:
    common = {"www-authenticate": _www_authenticate(invalid_token), "cache-control": "no-store"}
    if "text/html" in headers.get("accept", ""):
        page = (
            f"<!doctype html><title>Sign in required</title><p>{html.escape(error)}.</p>"
            f'<p><a href="{LOGIN_PATH}">Sign in with the API token</a></p>'
        )
        await _send_html(send, 401, page, common)
        return
    body = json.dumps({"error": error, "hint": HINT}).encode()
    await _send(send, 401, body, {**common, "content-type": "application/json"})


async def _deny_websocket(scope: Scope, receive: Receive, send: Send, error: str) -> None:
    await receive()  # websocket.connect
    if "websocket.http.response" in scope.get("extensions", {}):
        body = json.dumps({"error": error, "hint": HINT}).encode()
        await send({
            "type": "websocket.http.response.start", "status": 401,
            "headers": [(b"content-type", b"application/json"),
                        (b"www-authenticate", _www_authenticate(False).encode())],
        })
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 4401})


_PAGE_HEADERS = {
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
}


async def _send_html(send: Send, status: int, page: str, headers: Mapping[str, str] | None = None) -> None:
    merged = {**_PAGE_HEADERS, **(headers or {}), "content-type": "text/html; charset=utf-8"}
    await _send(send, status, page.encode("utf-8"), merged)


async def _send_redirect(send: Send, location: str, cookie: str) -> None:
    headers = {"location": quote(location, safe="/?&=#%:;+,-._~"), "set-cookie": cookie,
               "cache-control": "no-store"}
    await _send(send, 303, b"", headers)


def _login_page(next_path: str, failed: bool = False) -> str:
    notice = '<p class="error">That token is not valid.</p>' if failed else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>AQI platform: sign in</title>
<style>body{{font-family:sans-serif;max-width:28rem;margin:4rem auto}}
input{{width:100%;margin:.4rem 0;padding:.4rem}} .error{{color:#b00}}</style></head>
<body><h1>Sign in</h1>
<p>Launching runs and changing settings need the API token ({TOKEN_ENV}).</p>{notice}
<form method="post" action="{LOGIN_PATH}">
<input type="password" name="token" autocomplete="current-password" placeholder="API token"
 required autofocus>
<input type="hidden" name="next" value="{html.escape(next_path, quote=True)}">
<input type="submit" value="Sign in"></form>
<p><a href="{LOGOUT_PATH}">Sign out</a></p></body></html>"""
