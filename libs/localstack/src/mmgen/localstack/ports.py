"""Port helpers: find a free one, refuse a taken one, wait for one to open or close."""

from __future__ import annotations

import fcntl
import os
import random
import socket
import tempfile
import time
from collections import OrderedDict
from pathlib import Path

from mmgen.localstack.errors import LocalStackError, PortInUseError

_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 15000
_HELD = 256
_reservations: OrderedDict[int, int] = OrderedDict()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on and no other process of ours was handed (tests start
    servers on these).

    A server takes its port seconds after the pick (a whole stack: a minute), so a port the
    OS merely reports free can be taken in between. Two things took them: another test
    worker's pick of the same port, and the kernel handing it out as the local port of an
    outgoing connection or of a `bind(0)`. So the pick comes from below the kernel's
    ephemeral range, where the kernel hands out nothing by itself, and is reserved by a lock
    file that this process holds: other processes skip it while this one lives. The newest
    `_HELD` reservations are kept; an older one's server has long since bound its port, and a
    bound port is never picked again.
    """
    candidates = _pickable()
    for port in random.sample(candidates, len(candidates)):
        if port in _reservations or not _reserve(port):
            continue
        if _bindable(host, port):
            return port
        _release(port)
    raise LocalStackError(f"no free port on {host} among {len(candidates)} outside the kernel's")


def _pickable() -> list[int]:
    try:
        ephemeral_low = int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768  # Linux's default; other kernels use 49152 and above
    return list(range(_LOWEST if ephemeral_low > _LOWEST + 1000 else 1024, ephemeral_low))


def _reserve(port: int) -> bool:
    folder = Path(tempfile.gettempdir()) / "mmgen-ports"
    folder.mkdir(mode=0o777, exist_ok=True)
    fd = os.open(folder / f"{port}.lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _reservations[port] = fd
    while len(_reservations) > _HELD:
        _release(next(iter(_reservations)))
    return True


def _release(port: int) -> None:
    fd = _reservations.pop(port, None)
    if fd is not None:
        os.close(fd)


def _bindable(host: str, port: int) -> bool:
    """Nothing listens there and a server could bind it (see `ensure_port_free`)."""
    if port_is_open(host, port):
        return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


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
    if not _bindable(host, port):
        raise PortInUseError(component, host, port)


def wait_port_closed(host: str, port: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not port_is_open(host, port):
            return True
        time.sleep(0.05)
    return False
