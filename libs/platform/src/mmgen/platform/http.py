"""HTTP clients between the platform's processes.

A server closes a keep-alive connection that has been idle for `SERVER_KEEP_ALIVE_S`. A client
that keeps idle connections as long may send a request on one at the moment the server closes
it: the request fails with "Server disconnected without sending a response", though neither
side did anything wrong (under load, a retention footprint read lost this way cost an erasure a
whole round). `service_client` drops idle connections after `CLIENT_KEEPALIVE_EXPIRY_S`, well
before any server of ours does, so a kept connection is always still open at the other end.
"""

from __future__ import annotations

from typing import Any

import httpx

#: How long our servers (uvicorn, `mmgen.platform.app.server_config`) keep an idle connection.
SERVER_KEEP_ALIVE_S = 5
#: How long our clients keep one: well under the server's, whatever the scheduling delays.
CLIENT_KEEPALIVE_EXPIRY_S = 2.0


def service_client(timeout: float | httpx.Timeout, **options: Any) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` for calling our services (`options` go to httpx as they are)."""
    return httpx.AsyncClient(
        timeout=timeout,
        limits=httpx.Limits(keepalive_expiry=CLIENT_KEEPALIVE_EXPIRY_S),
        **options,
    )
