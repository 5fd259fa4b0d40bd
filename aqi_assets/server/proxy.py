"""Trusted reverse proxies: the ``AQI_TRUSTED_PROXIES`` setting, and the ASGI middleware that
applies forwarded headers (``Forwarded``, ``X-Forwarded-Proto/-Host/-For``) only when the
connecting peer is one of them, and removes them from every other request.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

TRUSTED_PROXIES_ENV = "AQI_TRUSTED_PROXIES"
FORWARDED_HEADERS = frozenset({b"forwarded", b"x-forwarded-for", b"x-forwarded-host", b"x-forwarded-proto"})
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ProxyConfigError(Exception):
    """An entry of the trusted-proxy setting is not an IP address or network."""


class TrustedProxies:
    """The addresses and networks whose forwarded headers are believed."""

    def __init__(self, networks: Iterable[Network] = ()):
        self.networks = tuple(networks)

    @classmethod
    def parse(cls, entries: Iterable[str], source: str) -> TrustedProxies:
        networks = []
        for entry in entries:
            for item in filter(None, (part.strip() for part in entry.split(","))):
                try:
                    networks.append(ipaddress.ip_network(item, strict=False))
                except ValueError:
                    raise ProxyConfigError(
                        f"{source}: {item!r} is not an IP address or network (e.g. 127.0.0.1, 10.0.0.0/8)"
                    ) from None
        return cls(networks)

    def __contains__(self, address: object) -> bool:
        try:
            ip = ipaddress.ip_address(str(address))
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __str__(self) -> str:
        return ", ".join(str(network) for network in self.networks) or "none"


def trusted_proxies_from(flags: Iterable[str] = (), environ: Mapping[str, str] | None = None) -> TrustedProxies:
    """``--trusted-proxy`` values, or else ``AQI_TRUSTED_PROXIES`` (comma-separated); none by default."""
    flags = list(flags)
    if flags:
        return TrustedProxies.parse(flags, "--trusted-proxy")
    env = os.environ if environ is None else environ
    return TrustedProxies.parse([env.get(TRUSTED_PROXIES_ENV, "")], TRUSTED_PROXIES_ENV)


def _last(value: str) -> str:
    """The value the nearest proxy set: the last of a comma-separated list."""
    return value.rsplit(",", 1)[-1].strip()


def _forwarded_pairs(value: str) -> dict[str, str]:
    """The parameters of the last element of an RFC 7239 ``Forwarded`` header."""
    pairs = {}
    for part in _last(value).split(";"):
        key, sep, item = part.partition("=")
        if sep:
            pairs[key.strip().lower()] = item.strip().strip('"')
    return pairs


def _address(node: str) -> str:
    """An IP address without the port or the brackets of a ``for=`` node."""
    if node.startswith("["):
        return node[1:].split("]", 1)[0]
    return node.split(":", 1)[0] if node.count(":") == 1 else node


class ForwardedHeaders:
    """ASGI middleware: from a trusted proxy, scheme, host and client come from its headers.

    The headers are removed from every request passed on, trusted or not, so nothing behind
    this middleware can be misled by a client that set them itself.
    """

    def __init__(self, app, trusted: TrustedProxies):
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: dict[str, Any], receive, send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = self.resolve(scope)
        await self.app(scope, receive, send)

    def resolve(self, scope: dict[str, Any]) -> dict[str, Any]:
        kept = [(k, v) for k, v in scope["headers"] if k.lower() not in FORWARDED_HEADERS]
        peer = scope.get("client")
        if not (peer and peer[0] in self.trusted):
            return {**scope, "headers": kept}
        found = {k.lower(): v.decode("latin-1") for k, v in scope["headers"] if k.lower() in FORWARDED_HEADERS}
        if b"forwarded" in found:
            pairs = _forwarded_pairs(found[b"forwarded"])
            proto, host, client = pairs.get("proto"), pairs.get("host"), pairs.get("for")
        else:
            proto = _last(found.get(b"x-forwarded-proto", "")) or None
            host = _last(found.get(b"x-forwarded-host", "")) or None
            client = self._client(found.get(b"x-forwarded-for", ""))
        resolved = {**scope}
        if proto and proto.lower() in ("http", "https"):
            secure = proto.lower() == "https"
            resolved["scheme"] = ("wss" if secure else "ws") if scope["type"] == "websocket" else proto.lower()
        if host and _HOST.match(host):
            kept = [(k, v) for k, v in kept if k.lower() != b"host"] + [(b"host", host.encode("latin-1"))]
        if client:
            resolved["client"] = (_address(client), 0)
        resolved["headers"] = kept
        return resolved

    def _client(self, chain: str) -> str | None:
        """The nearest address in ``X-Forwarded-For`` that is not itself a trusted proxy."""
        hops = [hop.strip() for hop in chain.split(",") if hop.strip()]
        for hop in reversed(hops):
            if _address(hop) not in self.trusted:
                return hop
        return hops[0] if hops else None
