"""Many small GET requests at once, for the load tests: HTTP/1.1 pipelined on a few keep-alive
connections, answers read back by status and `Content-Length` only.

An httpx client spends about a millisecond of CPU on each request: on the 2-core machine the
suite runs on, 10,000 of them took longer on the client than on the services. Written as raw
requests, the client costs next to nothing and the services are what is measured.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from urllib.parse import urlsplit


async def _one_connection(
    host: str, port: int, requests: Sequence[tuple[str, dict[str, str]]]
) -> list[int]:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        raw = b"".join(
            (
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
                + "\r\n"
            ).encode("latin-1")
            for path, headers in requests
        )

        async def send() -> None:
            writer.write(raw)
            await writer.drain()

        # Written while the answers are read: neither side waits on a full buffer.
        sending = asyncio.create_task(send())
        statuses = []
        for _ in requests:
            status_line = await reader.readline()
            statuses.append(int(status_line.split()[1]))
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
        await sending
        return statuses
    finally:
        writer.close()
        await writer.wait_closed()


async def get_all(
    base_url: str, requests: Sequence[tuple[str, dict[str, str]]], connections: int = 8
) -> list[int]:
    """The status of each `(path, headers)` GET at `base_url`, spread over `connections`."""
    url = urlsplit(base_url)
    assert url.hostname is not None and url.port is not None, base_url
    shares = [requests[n::connections] for n in range(connections)]
    answers = await asyncio.gather(
        *(_one_connection(url.hostname, url.port, share) for share in shares if share)
    )
    return [status for share in answers for status in share]
