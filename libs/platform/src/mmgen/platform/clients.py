"""The client's network address, believing `X-Forwarded-For` only from trusted proxies.

Behind a gateway every request comes from the gateway, so per-address limits need the address
the gateway saw; but anyone can send the header, so it is believed only when the TCP peer is in
`trusted_proxies` (settings). Walking the header from the right, each hop added by a trusted
proxy is skipped; the first address not in the list is the client. A peer outside the list, a
missing or malformed header: the TCP peer is the client. uvicorn's own proxy-header handling
stays off (`serve`, `mmgen up`), since it trusts any loopback peer.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import lru_cache

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from mmgen.platform.problems import problem_response
from mmgen.platform.settings import is_loopback_host

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

FORWARDED_FOR = "x-forwarded-for"
UNKNOWN_CLIENT = "unknown"
#: Hops read from the header at most (a longer header is someone's padding).
MAX_HOPS = 20


@lru_cache(maxsize=16)
def trusted_networks(entries: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    """Networks from settings (`10.0.0.5`, `10.0.0.0/8`, `fd00::/8`)."""
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def _address(text: str) -> IPAddress | None:
    candidate = text.strip()
    if candidate.startswith("[") and "]" in candidate:  # [v6]:port
        candidate = candidate[1 : candidate.index("]")]
    elif candidate.count(":") == 1:  # v4:port
        candidate = candidate.split(":", 1)[0]
    try:
        return ipaddress.ip_address(candidate)
    except ValueError:
        return None


def _trusted(address: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    return any(address in network for network in networks)


def resolve_client(
    peer: str | None, forwarded_for: str | None, trusted: Sequence[IPNetwork]
) -> str:
    """The client address of a request from `peer` carrying `forwarded_for` (see module doc)."""
    if not peer:
        return UNKNOWN_CLIENT
    peer_address = _address(peer)
    if peer_address is None or not trusted or not forwarded_for:
        return peer
    if not _trusted(peer_address, trusted):
        return peer
    hops = forwarded_for.split(",")[-MAX_HOPS:]
    client = peer_address
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break  # malformed from here on: the last good hop is as far as we can believe
        client = address
        if not _trusted(address, trusted):
            break
    return str(client)


def client_address(request: Request) -> str:
    """The request's client address under the app's `trusted_proxies` setting."""
    settings = getattr(request.app.state, "settings", None)
    networks = trusted_networks(tuple(getattr(settings, "trusted_proxies", ()) or ()))
    peer = request.client.host if request.client else None
    return resolve_client(peer, request.headers.get(FORWARDED_FOR), networks)


class LoopbackOnlyMiddleware:
    """Refuses requests that reached the server on an address other than loopback.

    The local stack may run on development secrets because it is bound to loopback; the
    settings say where it binds, but `uvicorn --host` could say otherwise. The address a
    request arrived at (the ASGI `server`) cannot: whatever the bind, a request from the network
    is refused (403) and never reaches a route.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            server = scope.get("server")
            host = server[0] if server else None
            if host is not None and not is_loopback_host(str(host)):
                response = problem_response(
                    None,
                    status=403,
                    slug="loopback-only",
                    title="Local development service",
                    detail="this service runs on development secrets and answers on loopback only",
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
