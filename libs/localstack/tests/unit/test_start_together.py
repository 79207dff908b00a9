"""Components start together: each is spawned before any is waited for, and a failure of one
stops all the others, ready or still starting."""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mmgen.localstack.errors import ComponentExitedError, PortInUseError
from mmgen.localstack.ports import free_port, port_is_open
from mmgen.localstack.processes import Launch, ManagedProcess, spawn, start_together

HOST = "127.0.0.1"
# Listens on its port and leaves a marker saying it has started; never exits by itself.
LISTENER = """
import pathlib, socket, sys, time
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", int(sys.argv[1])))
sock.listen()
pathlib.Path(sys.argv[2]).write_text("started")
time.sleep(120)
"""


def listener(name: str, folder: Path, ready_when: Callable[[], bool]) -> Callable[[], Launch]:
    def launch() -> Launch:
        port = free_port()
        argv = [sys.executable, "-c", LISTENER, str(port), str(folder / f"{name}.started")]
        return Launch(spawn(name, argv, HOST, port, folder / f"{name}.log"), ready_when)

    return launch


def test_each_is_spawned_before_any_is_waited_for(tmp_path: Path) -> None:
    """Each is ready only once the other has started: one after the other would never get
    past the first (it would time out), whatever the machine's speed."""
    events: list[str] = []
    procs = start_together(
        [
            listener("alpha", tmp_path, lambda: (tmp_path / "beta.started").exists()),
            listener("beta", tmp_path, lambda: (tmp_path / "alpha.started").exists()),
        ],
        timeout=30,
        on_spawned=lambda proc: events.append(f"spawned {proc.name}"),
        on_ready=lambda proc: events.append(f"ready {proc.name}"),
    )
    try:
        assert [proc.name for proc in procs] == ["alpha", "beta"]
        assert events[:2] == ["spawned alpha", "spawned beta"]
        assert sorted(events[2:]) == ["ready alpha", "ready beta"]
        assert all(proc.alive() for proc in procs)
    finally:
        for proc in procs:
            proc.stop(kill=True)


def test_one_that_exits_stops_the_ones_still_starting(tmp_path: Path) -> None:
    spawned: list[ManagedProcess] = []

    def crashing() -> Launch:
        argv = [sys.executable, "-c", "print('bad setting: partitions=0'); raise SystemExit(3)"]
        return Launch(spawn("crashing", argv, HOST, free_port(), tmp_path / "c.log"), lambda: True)

    with pytest.raises(ComponentExitedError) as caught:
        start_together(
            [listener("slow", tmp_path, lambda: False), crashing],
            timeout=30,
            on_spawned=spawned.append,
        )
    assert caught.value.component == "crashing"
    assert "bad setting: partitions=0" in str(caught.value)
    slow = spawned[0]
    assert (slow.name, slow.alive()) == ("slow", False)
    assert not port_is_open(HOST, slow.port)


def test_a_launcher_that_fails_stops_those_spawned_before_it(tmp_path: Path) -> None:
    spawned: list[ManagedProcess] = []
    with socket.socket() as squatter:
        squatter.bind((HOST, 0))
        squatter.listen()
        taken = squatter.getsockname()[1]

        def on_taken_port() -> Launch:
            argv = [sys.executable, "-c", "import time; time.sleep(60)"]
            return Launch(spawn("late", argv, HOST, taken, tmp_path / "l.log"), lambda: True)

        with pytest.raises(PortInUseError, match=f"late: port {taken}"):
            start_together(
                [listener("first", tmp_path, lambda: False), on_taken_port],
                timeout=30,
                on_spawned=spawned.append,
            )
    [first] = spawned
    assert not first.alive()
