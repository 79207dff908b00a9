"""A port picked free but taken before our server bound it is picked again; nothing else is
retried (a component that fails for another reason fails the session at once)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmgen.localstack.errors import ComponentExitedError, PortInUseError
from mmgen.localstack.pytest_plugin import retry_on_port_clash

LOG = Path("broker.log")


def failing(*errors: Exception):
    calls: list[int] = []

    def start() -> str:
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return "started"

    return start, calls


@pytest.mark.parametrize(
    "clash",
    [
        PortInUseError("broker", "127.0.0.1", 4242),
        ComponentExitedError("service", 4242, LOG, "[Errno 98] address already in use"),
        ComponentExitedError(
            "broker", 4242, LOG, 'Os { code: 98, kind: AddrInUse, message: "Address in use" }'
        ),
    ],
)
def test_a_port_clash_is_retried_with_new_ports(clash: Exception) -> None:
    start, calls = failing(clash)
    assert retry_on_port_clash(start) == "started"
    assert len(calls) == 2


def test_other_failures_are_not_retried() -> None:
    start, calls = failing(ComponentExitedError("database", 4242, LOG, "cannot open storage"))
    with pytest.raises(ComponentExitedError, match="cannot open storage"):
        retry_on_port_clash(start)
    assert len(calls) == 1


def test_a_clash_every_time_gives_up_after_the_last_attempt() -> None:
    clash = PortInUseError("broker", "127.0.0.1", 4242)
    start, calls = failing(clash, clash, clash)
    with pytest.raises(PortInUseError):
        retry_on_port_clash(start, attempts=3)
    assert len(calls) == 3
