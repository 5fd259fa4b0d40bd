"""API-token access control for the webserver: token settings, browser sessions, the same-origin
rule for session cookies, and the ASGI guard (what a GraphQL document may hold is in ``documents``)."""

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
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from anyio import CapacityLimiter, to_thread
from starlette.datastructures import Headers, QueryParams
from starlette.requests import cookie_parser

from aqi_assets.server.documents import (
    ANONYMOUS_LIMITS,
    ANONYMOUS_WEBSOCKET_LIMITS,
    SAFE_METHODS,
    SIGNED_IN_LIMITS,
    DocumentLimits,
    DocumentRejected,
    GraphQLVerdict,
    classify_graphql_request,
    classify_graphql_ws_frame,
)

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
MAX_LOGIN_BODY = 8 * 1024
# A refused body up to this size is read and dropped, so that the client gets the answer
# instead of a connection reset; a larger one is cut off.
MAX_DRAINED_BODY = 16 * 1024 * 1024
# Worker threads that parse GraphQL for the guard (never the event loop): a flood of documents
# queues here instead of taking the threads Dagster resolves queries in.
PARSE_THREADS = 2

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


def _origin(scheme: str, host: str) -> str:
    """``scheme://host[:port]`` as a browser writes it in ``Origin``: lower case, no default port."""
    scheme = {"ws": "http", "wss": "https"}.get(scheme.lower(), scheme.lower())
    host = host.lower()
    default = ":443" if scheme == "https" else ":80"
    return f"{scheme}://{host.removesuffix(default)}"


def origin_problem(scope: Scope, headers: Headers) -> str | None:
    """None when the request verifiably comes from this server's own pages; else why it does not.

    This server's origin is the request's scheme and ``Host`` (forwarded ones only from a
    trusted proxy: ``proxy.ForwardedHeaders`` has already applied them). Browsers send
    ``Origin`` on every POST and websocket handshake; without it, ``Sec-Fetch-Site:
    same-origin`` is accepted.
    """
    host = headers.get("host", "")
    own = _origin(scope.get("scheme", "http"), host) if host else None
    origin = headers.get("origin")
    if origin is not None:
        parts = urlsplit(origin)
        if own is not None and origin != "null" and _origin(parts.scheme, parts.netloc) == own:
            return None
        return f"Origin {_printable(origin)} is not this server's origin ({own or 'no Host header'})"
    if headers.get("sec-fetch-site", "").lower() == "same-origin":
        return None
    return "the request has neither an Origin header nor Sec-Fetch-Site: same-origin"


def _safe_next(target: str) -> str:
    """A post-login redirect target on this site only."""
    if target.startswith("/") and not target.startswith(("//", "/\\")) and target.isprintable():
        return target
    return "/"


@dataclass
class _Credentials:
    """What a request presents: a bearer token, a session cookie, and whether it is same-origin."""

    presented_bearer: bool = False
    bearer_ok: bool = False
    session_ok: bool = False
    origin_problem: str | None = None  # why a session request is not verifiably same-origin
    other_origin: bool = False  # it names an Origin that is not this server's

    @property
    def may_read(self) -> bool:
        """The cookie counts for reads unless the request says it comes from another origin."""
        return self.bearer_ok or (self.session_ok and not self.other_origin)

    def may_change_state(self, method: str | None) -> bool:
        """The token always; the cookie only on a same-origin POST (``method`` None: a websocket)."""
        return self.bearer_ok or (
            self.session_ok and self.origin_problem is None and method in (None, "POST")
        )

    def session_refusal(self, method: str | None) -> str:
        if self.other_origin:
            return f"the session cookie is not accepted from another origin: {self.origin_problem}"
        if method not in (None, "POST"):
            return (f"a session cookie cannot change state with {method}: use POST from this server's "
                    "pages, or send the bearer token")
        return f"the session cookie changes state only on requests from this server's own pages: {self.origin_problem}"


class TokenGuard:
    """ASGI middleware: requests that may change state (and, optionally, reads) need the token.

    Accepts ``Authorization: Bearer <token>`` or the session cookie issued by ``/aqi/login``;
    the cookie changes state only on a same-origin POST (or websocket). Whatever is not
    authorised by the token is classified first: its size is bounded before it is read in full,
    its documents are checked lexically (``documents.ANONYMOUS_LIMITS``) before they are
    parsed, and parsing runs in a worker thread. A refused request is answered here (401
    without credentials, 403 for a cookie used cross-origin, 413/400 over a limit) and never
    reaches the wrapped app.
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
        self._parse_limiter = CapacityLimiter(PARSE_THREADS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    # -- credentials

    def _credentials(self, scope: Scope, headers: Headers) -> _Credentials:
        credentials = _Credentials()
        for value in headers.getlist("authorization"):
            scheme, _, presented = value.strip().partition(" ")
            if scheme.lower() == "bearer":
                credentials.presented_bearer = True
                if self.token.matches(presented.strip().encode("latin-1")):
                    credentials.bearer_ok = True
        session_id = cookie_parser(headers.get("cookie", "")).get(SESSION_COOKIE)
        if session_id and self.sessions.is_valid(session_id):
            credentials.session_ok = True
            credentials.origin_problem = origin_problem(scope, headers)
            credentials.other_origin = "origin" in headers and credentials.origin_problem is not None
        return credentials

    @staticmethod
    def _limits(credentials: _Credentials, websocket: bool = False) -> DocumentLimits:
        if credentials.session_ok:
            return SIGNED_IN_LIMITS
        return ANONYMOUS_WEBSOCKET_LIMITS if websocket else ANONYMOUS_LIMITS

    @staticmethod
    def _without_authorization(scope: Scope) -> Scope:
        """The scope passed on: the token goes no further than this guard."""
        headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"authorization"]
        return {**scope, "headers": headers}

    async def _in_worker(self, function: Callable[..., GraphQLVerdict], *args: Any) -> GraphQLVerdict:
        return await to_thread.run_sync(partial(function, *args), limiter=self._parse_limiter)

    def _log_refusal(self, scope: Scope, reason: str, operations: Iterable[str] = ()) -> None:
        client = scope.get("client")
        address = (f"{client[0]}:{client[1]}" if client[1] else client[0]) if client else "unknown"
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
        credentials = self._credentials(scope, headers)
        if credentials.may_change_state(method):
            await self.app(self._without_authorization(scope), receive, send)
            return
        if credentials.presented_bearer:
            await self._refuse(scope, send, headers, 401, "the presented token is not valid", invalid_token=True)
            return
        if self.protect_reads and path not in HEALTH_PATHS and not credentials.may_read:
            if credentials.session_ok:
                await self._refuse(scope, send, headers, 403, credentials.session_refusal(None))
            else:
                await self._refuse(scope, send, headers, 401, "a token is required to read (reads are protected)")
            return

        try:
            if path == GRAPHQL_PATH:
                verdict, receive = await self._inspect_graphql(scope, headers, receive, self._limits(credentials))
            else:
                verdict = GraphQLVerdict(method not in SAFE_METHODS, reason=f"{method} request")
        except DocumentRejected as rejected:
            self._log_refusal(scope, str(rejected))
            await _reject_document(send, rejected, signed_in=credentials.session_ok)
            return
        if not verdict.changes_state:
            await self.app(scope, receive, send)
        elif credentials.session_ok:
            await self._refuse(scope, send, headers, 403, credentials.session_refusal(method), verdict.operations)
        else:
            await self._refuse(scope, send, headers, 401, f"a token is required to change state ({verdict.reason})",
                               verdict.operations)

    async def _inspect_graphql(
        self, scope: Scope, headers: Headers, receive: Receive, limits: DocumentLimits
    ) -> tuple[GraphQLVerdict, Receive]:
        """Classify a GraphQL request within ``limits``; a POST body read for that is handed on to the app."""
        method = scope["method"]
        query_string = scope.get("query_string", b"")
        limits.check_size(len(query_string))
        body = b""
        if method == "POST":
            read, size = await _read_body(receive, limits.max_bytes)
            limits.check_size(size)  # raises when the body was over the limit (and not kept)
            body = read or b""
            receive = _replay(body, receive)
        verdict = await self._in_worker(
            classify_graphql_request, method, query_string, headers.get("content-type", ""), body, limits
        )
        return verdict, receive

    async def _refuse(self, scope: Scope, send: Send, headers: Headers, status: int, reason: str,
                      operations: Iterable[str] = (), *, invalid_token: bool = False) -> None:
        self._log_refusal(scope, reason, operations)
        await _send_refusal(send, status, reason, headers, invalid_token=invalid_token)

    async def _login(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        params = QueryParams(scope.get("query_string", b"").decode("latin-1"))
        if method in {"GET", "HEAD"}:
            await _send_html(send, 200, _login_page(_safe_next(params.get("next", "/"))))
            return
        if method != "POST":
            await _send_html(send, 405, "<p>Method not allowed</p>", {"allow": "GET, POST"})
            return
        body, _ = await _read_body(receive, MAX_LOGIN_BODY)
        form = dict(parse_qsl(body.decode("utf-8", "replace"))) if body is not None else {}
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
        credentials = self._credentials(scope, Headers(scope=scope))
        if credentials.may_change_state(None):
            await self.app(self._without_authorization(scope), receive, send)
            return
        if credentials.presented_bearer or (self.protect_reads and not credentials.may_read):
            reason = ("the presented token is not valid" if credentials.presented_bearer
                      else "a token is required to read (reads are protected)")
            self._log_refusal(scope, reason)
            await _deny_websocket(scope, receive, send, reason)
            return

        limits = self._limits(credentials, websocket=True)
        closed = False

        async def close(code: int, reason: str, log: str, operations: Iterable[str] = ()) -> Message:
            nonlocal closed
            self._log_refusal(scope, log, operations)
            closed = True
            await send({"type": "websocket.close", "code": code, "reason": reason})
            return {"type": "websocket.disconnect", "code": code}

        async def guarded_receive() -> Message:
            message = await receive()
            if message["type"] != "websocket.receive" or closed:
                return message
            try:
                limits.check_size(_frame_size(message, limits.max_bytes))
                verdict = await self._in_worker(classify_graphql_ws_frame, message, limits)
            except DocumentRejected as rejected:
                code = 1009 if rejected.status == 413 else 4400
                return await close(code, f"over the limit {rejected.limit}={rejected.value}", str(rejected))
            if not verdict.changes_state:
                return message
            if credentials.session_ok:
                return await close(4403, "session cookie not from this server's pages",
                                   credentials.session_refusal(None), verdict.operations)
            return await close(4401, "token required", f"a token is required to change state ({verdict.reason})",
                               verdict.operations)

        async def guarded_send(message: Message) -> None:
            if not closed:
                await send(message)

        await self.app(scope, guarded_receive, guarded_send)


# ---------------------------------------------------------------- ASGI plumbing


def _frame_size(message: Message, limit: int) -> int:
    """Bytes in a websocket frame; a text frame with more characters than ``limit`` is not encoded to count."""
    text = message.get("text")
    if text is None:
        return len(message.get("bytes") or b"")
    return len(text) if len(text) > limit else len(text.encode("utf-8", "surrogatepass"))


async def _read_body(receive: Receive, limit: int) -> tuple[bytes | None, int]:
    """The request body and its size; None for a body over ``limit``, whose rest is read and
    dropped (up to ``MAX_DRAINED_BODY``) so that the client can read the answer."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        elif size > MAX_DRAINED_BODY:
            break
        if not message.get("more_body", False):
            break
    return (b"".join(chunks) if size <= limit else None), size


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


async def _send_json(send: Send, status: int, payload: Mapping[str, Any], headers: Mapping[str, str]) -> None:
    await _send(send, status, json.dumps(payload).encode(), {**headers, "content-type": "application/json"})


async def _send_refusal(send: Send, status: int, error: str, headers: Headers, *, invalid_token: bool) -> None:
    """401 (no valid credentials: ``WWW-Authenticate``) or 403, as a page for browsers, else JSON."""
    common = {"cache-control": "no-store"}
    if status == 401:
        common["www-authenticate"] = _www_authenticate(invalid_token)
    if "text/html" in headers.get("accept", ""):
        title = "Sign in required" if status == 401 else "Refused"
        page = (
            f"<!doctype html><title>{title}</title><p>{html.escape(error)}.</p>"
            f'<p><a href="{LOGIN_PATH}">Sign in with the API token</a></p>'
        )
        await _send_html(send, status, page, common)
        return
    await _send_json(send, status, {"error": error, "hint": HINT}, common)


async def _reject_document(send: Send, rejected: DocumentRejected, *, signed_in: bool) -> None:
    """413 or 400 naming the limit that was passed."""
    hint = HINT if signed_in else f"{HINT} to send larger or more complex documents"
    payload = {"error": str(rejected), "limit": {rejected.limit: rejected.value}, "hint": hint}
    await _send_json(send, rejected.status, payload, {"cache-control": "no-store"})


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
