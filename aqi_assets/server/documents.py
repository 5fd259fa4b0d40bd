"""GraphQL documents in requests: the limits a request must keep, checked lexically before any
parse, and the mutation detector that decides whether a request may change state.

Everything here is synchronous and CPU-bound; the guard runs it in a worker thread.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from graphql import OperationDefinitionNode, OperationType, parse
from starlette.datastructures import QueryParams

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class DocumentRejected(Exception):
    """A request over one of the limits; ``status`` is 413 (too large) or 400 (too complex)."""

    def __init__(self, message: str, status: int, limit: str, value: int):
        super().__init__(message)
        self.status = status
        self.limit = limit
        self.value = value


@dataclass(frozen=True)
class DocumentLimits:
    """What one request may carry (``None``: unbounded), and whom the limits are for (for messages)."""

    applies_to: str
    max_bytes: int
    max_operations: int | None = None
    max_depth: int | None = None
    max_aliases: int | None = None
    max_selections: int | None = None

    def check_size(self, size: int) -> None:
        if size > self.max_bytes:
            raise DocumentRejected(
                f"the GraphQL request is {size:,} bytes; {self.applies_to} may send at most "
                f"{self.max_bytes:,} bytes", 413, "max_bytes", self.max_bytes,
            )


# The Dagster UI's largest operation (fragments included) is about 7.5 KB, 11 levels deep, with
# 4 aliases and 300 names in selection sets; GraphiQL's schema query is 10 levels deep.
# Validating a document costs up to the square of its names (fields that share a name are
# compared pairwise): 1,000 names cost about a second of a Dagster worker thread.
ANONYMOUS_LIMITS = DocumentLimits(
    applies_to="requests without the API token", max_bytes=64 * 1024, max_operations=10, max_depth=20,
    max_aliases=100, max_selections=1000,
)
# Dagster parses and validates a websocket subscription on its event loop, not in a worker
# thread: fewer names there (the UI's largest subscription has 274).
ANONYMOUS_WEBSOCKET_LIMITS = replace(ANONYMOUS_LIMITS, max_selections=500)
# Signed-in browsers (session cookie) whose requests the guard still has to classify.
SIGNED_IN_LIMITS = DocumentLimits(applies_to="signed-in requests", max_bytes=4 * 1024 * 1024)

# Strings, block strings and comments are matched whole so that braces inside them are skipped;
# the alternatives of the block string never overlap, which keeps the scan linear.
_TOKEN = re.compile(
    r'"""(?:[^"\\]|\\"""|\\(?!""")|"(?!""))*"""'
    r'|"(?:[^"\\\n\r]|\\.)*"'
    r"|#[^\n\r]*"
    r"|[_A-Za-z][_0-9A-Za-z]*"
    r"|[{}():]"
)
_OPERATION_KEYWORDS = frozenset({"query", "mutation", "subscription"})


class _Shape:
    """Running counts over the documents of one request; raises as soon as a limit is passed."""

    def __init__(self, limits: DocumentLimits):
        self.limits = limits
        self.operations = self.aliases = self.selections = 0

    def _count(self, name: str, value: int, limit: int | None, what: str) -> int:
        if limit is not None and value > limit:
            raise DocumentRejected(f"the GraphQL request has more than {limit:,} {what}; "
                                   f"{self.limits.applies_to} may send at most {limit:,}", 400, name, limit)
        return value

    def scan(self, text: str) -> None:
        limits = self.limits
        depth = parens = 0
        in_header = False  # between an operation keyword and the opening brace of its selection set
        for match in _TOKEN.finditer(text):
            token = match.group()
            first = token[0]
            if first in '"#':
                continue
            if token == "(":
                parens += 1
            elif token == ")":
                parens = max(parens - 1, 0)
            elif parens:
                continue  # arguments, variable definitions and input objects
            elif token == "{":
                if depth == 0 and not in_header:  # the `{ ... }` shorthand of a query
                    self.operations = self._count("max_operations", self.operations + 1,
                                                  limits.max_operations, "operations")
                in_header = False
                depth = self._count("max_depth", depth + 1, limits.max_depth, "levels of nested selections")
            elif token == "}":
                depth = max(depth - 1, 0)
            elif depth == 0:
                if not in_header and token in _OPERATION_KEYWORDS:
                    self.operations = self._count("max_operations", self.operations + 1,
                                                  limits.max_operations, "operations")
                in_header = True
            elif token == ":":
                self.aliases = self._count("max_aliases", self.aliases + 1, limits.max_aliases, "aliased fields")
            else:
                self.selections = self._count("max_selections", self.selections + 1, limits.max_selections,
                                              "names in selection sets (fields, aliases, fragment spreads)")


# ---------------------------------------------------------------- the mutation detector


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
        document = parse(text, no_location=True)
    except Exception as error:  # GraphQLError, RecursionError on absurd nesting, ...
        raise ValueError(f"unparseable GraphQL ({type(error).__name__})") from None
    return [
        (d.operation, d.name.value if d.name else "<anonymous>")
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode)
    ]


def classify_queries(queries: Iterable[object], limits: DocumentLimits | None = None) -> GraphQLVerdict:
    """A set of documents changes state if any contains a mutation or any cannot be parsed.

    With ``limits``, every document is scanned first and none is parsed when one is over
    (``DocumentRejected``). The operation name a client selects is deliberately ignored: a
    document that carries a mutation needs the token even when the operation picked to run is a query.
    """
    queries = list(queries)
    if limits is not None:
        shape = _Shape(limits)
        for query in queries:
            if isinstance(query, str):
                shape.scan(query)
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
    method: str, query_string: bytes = b"", content_type: str = "", body: bytes = b"",
    limits: DocumentLimits | None = None,
) -> GraphQLVerdict:
    """Decide whether an HTTP request to the GraphQL endpoint may change state.

    Looks wherever dagster-webserver may take a query from: the query string (GET, and POSTs
    that are neither JSON nor ``application/graphql``), a JSON body (one object or a batched
    list) or an ``application/graphql`` body. A POST whose body cannot be understood, or that
    carries no query at all, is treated as state-changing.
    """
    queries: list[object] = list(QueryParams(query_string.decode("latin-1")).getlist("query"))
    if method in SAFE_METHODS:
        return classify_queries(queries, limits)
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
    return classify_queries(queries, limits)


def classify_graphql_ws_frame(message: dict[str, Any], limits: DocumentLimits | None = None) -> GraphQLVerdict:
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
    return classify_queries([payload.get("query")], limits)
