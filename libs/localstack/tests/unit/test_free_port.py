"""`free_port` hands a port to one process at a time and never one the kernel hands out itself:
test workers pick ports side by side and their servers bind them seconds later."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mmgen.localstack import ports
from mmgen.localstack.errors import LocalStackError
from mmgen.localstack.ports import free_port

HOLDER = """
import sys
from mmgen.localstack import ports
ports._pickable = lambda: [int(sys.argv[1])]
print(ports.free_port(), flush=True)
sys.stdin.read()
"""


@pytest.fixture
def only(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Make `free_port` choose among the given ports alone; a port this process picked to
    name one is given back first, so the pick under test is the only holder."""

    def restrict(*chosen: int) -> None:
        for port in chosen:
            ports._release(port)
        monkeypatch.setattr(ports, "_pickable", lambda: list(chosen))

    return restrict


def test_a_port_is_picked_below_the_kernels_ephemeral_range() -> None:
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert all(1024 <= free_port() < low for _ in range(20))


def test_one_process_is_never_handed_the_same_port_twice(only: Callable[..., None]) -> None:
    first, second = free_port(), free_port()
    only(first, second)
    assert {free_port(), free_port()} == {first, second}
    with pytest.raises(LocalStackError, match="no free port"):
        free_port()


def test_a_port_another_process_holds_is_skipped_until_it_exits(
    only: Callable[..., None],
) -> None:
    port = free_port()
    only(port)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and int(holder.stdout.readline()) == port
        with pytest.raises(LocalStackError, match="no free port"):
            free_port()
    finally:
        holder.communicate("")
    assert free_port() == port


def test_a_port_a_server_listens_on_is_skipped(only: Callable[..., None]) -> None:
    port = free_port()
    only(port)
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))
        server.listen()
        with pytest.raises(LocalStackError, match="no free port"):
            free_port()
    assert free_port() == port
