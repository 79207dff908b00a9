"""A component that exits or never becomes ready is named, with its port and log tail."""

from __future__ import annotations

import socket
import sys

import pytest

from mmgen.localstack.errors import ComponentExitedError, ComponentNotReadyError, PortInUseError
from mmgen.localstack.ports import ensure_port_free, free_port, port_is_open
from mmgen.localstack.processes import spawn, wait_ready


def test_component_that_exits_is_reported_with_its_log(tmp_path) -> None:
    port = free_port()
    script = "print('cannot open storage'); raise SystemExit(3)"
    proc = spawn("flaky", [sys.executable, "-c", script], "127.0.0.1", port, tmp_path / "flaky.log")
    with pytest.raises(ComponentExitedError) as caught:
        wait_ready(proc, lambda: True, timeout=10)
    message = str(caught.value)
    assert "flaky" in message and str(port) in message and "cannot open storage" in message


def test_component_that_never_answers_times_out_and_is_named(tmp_path) -> None:
    port = free_port()
    proc = spawn(
        "sleepy",
        [sys.executable, "-c", "import time; print('warming'); time.sleep(30)"],
        "127.0.0.1",
        port,
        tmp_path / "sleepy.log",
    )
    try:
        with pytest.raises(ComponentNotReadyError) as caught:
            wait_ready(proc, lambda: True, timeout=1)
        assert "sleepy" in str(caught.value) and str(port) in str(caught.value)
    finally:
        proc.stop(kill=True)
    assert not proc.alive()


def test_taken_port_is_refused_by_name() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        assert port_is_open("127.0.0.1", port)
        with pytest.raises(PortInUseError, match=f"database: port {port}"):
            ensure_port_free("database", "127.0.0.1", port)


def test_a_port_whose_server_just_stopped_is_free_again() -> None:
    """The stopped server's side of its connections lingers in TIME_WAIT (it closed first):
    that is no listener, and a restart on the same port must be allowed (servers bind with
    SO_REUSEADDR)."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = listener.accept()
            accepted.close()  # the server side closes first: TIME_WAIT on the server's port
            client.recv(1)
    assert not port_is_open("127.0.0.1", port)
    ensure_port_free("broker", "127.0.0.1", port)
