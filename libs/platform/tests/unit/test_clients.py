"""The client address: `X-Forwarded-For` is believed only from trusted proxies."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mmgen.platform import ServiceSettings
from mmgen.platform.clients import resolve_client, trusted_networks

GATEWAYS = trusted_networks(("10.0.0.0/24", "fd00::1"))


@pytest.mark.parametrize(
    ("peer", "header", "client"),
    [
        # No trusted proxy in between: the peer, whatever the header says.
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),
        ("127.0.0.1", "198.51.100.1", "127.0.0.1"),  # loopback is not trusted by default
        # From the gateway: the address it saw (the rightmost hop it appended).
        ("10.0.0.5", "198.51.100.1", "198.51.100.1"),
        # A client cannot choose its address by prepending hops: the gateway appended the real one.
        ("10.0.0.5", "1.2.3.4, 5.6.7.8, 198.51.100.1", "198.51.100.1"),
        # Chained trusted proxies are skipped.
        ("10.0.0.5", "198.51.100.1, 10.0.0.7", "198.51.100.1"),
        ("fd00::1", "2001:db8::5", "2001:db8::5"),
        ("10.0.0.5", "[2001:db8::5]:4711", "2001:db8::5"),
        ("10.0.0.5", "198.51.100.1:4711", "198.51.100.1"),
        # Malformed or missing: nothing beyond what can be believed.
        ("10.0.0.5", "not-an-address", "10.0.0.5"),
        ("10.0.0.5", "", "10.0.0.5"),
        ("10.0.0.5", None, "10.0.0.5"),
        (None, "198.51.100.1", "unknown"),
    ],
)
def test_resolve_client(peer: str | None, header: str | None, client: str) -> None:
    assert resolve_client(peer, header, GATEWAYS) == client


def test_without_trusted_proxies_the_header_is_never_read() -> None:
    assert resolve_client("10.0.0.5", "198.51.100.1", ()) == "10.0.0.5"


def test_trusted_proxies_are_validated() -> None:
    assert ServiceSettings(trusted_proxies=("10.0.0.0/8", "::1")).trusted_proxies == (
        "10.0.0.0/8",
        "::1",
    )
    with pytest.raises(ValidationError):
        ServiceSettings(trusted_proxies=("gateway.internal",))
