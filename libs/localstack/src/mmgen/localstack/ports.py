"""Port helpers: find a free one, refuse a taken one, wait for one to open or close."""

from __future__ import annotations

import socket
import time

from mmgen.localstack.errors import PortInUseError


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS reports free right now (tests start servers on these)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def ensure_port_free(component: str, host: str, port: int) -> None:
    """Fail fast, naming the component and port, when the port is taken.

    Both a listener answering there and a failed bind count as taken: a leftover server
    keeps its port and would make the new one fail later with a less clear message. The
    bind uses SO_REUSEADDR, as the servers themselves do (Tansu, uvicorn): connections of a
    server that just stopped linger in TIME_WAIT for a minute and must not count as a
    listener, or a component could not be restarted on its port (a broker restart test,
    `mmgen down` then `up`). A live listener still makes that bind fail.
    """
    if port_is_open(host, port):
        raise PortInUseError(component, host, port)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise PortInUseError(component, host, port) from exc


def wait_port_closed(host: str, port: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not port_is_open(host, port):
            return True
        time.sleep(0.05)
    return False
