"""`mmgen up/status/down/reset` against the real broker and database processes."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import time
from typing import IO

import pytest
from pymongo import MongoClient

from mmgen.cli.main import RUNNING
from mmgen.localstack.components import mongo_uri
from mmgen.localstack.ports import port_is_open
from mmgen.localstack.processes import pid_alive

from ..conftest import MMGEN

HOST = "127.0.0.1"


def recorded_pids(cli) -> list[int]:
    record = json.loads((cli.state_dir / "stack.json").read_text())
    return [component["pid"] for component in record["components"]]


def read_until(stream: IO[str], texts: list[str], timeout: float = 30.0) -> str:
    """What a child printed on `stream` until every one of `texts` appeared (or the deadline).

    Reads the pipe's descriptor directly, so the child's output is seen as it is written.
    """
    seen = b""
    fd = stream.fileno()
    deadline = time.monotonic() + timeout
    while not all(text.encode() in seen for text in texts):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        readable, _, _ = select.select([fd], [], [], remaining)
        if readable:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            seen += chunk
    return seen.decode(errors="replace")


def wait_until(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_up_detach_status_down_and_data_survives(cli) -> None:
    started = cli.run("up", "--detach", "--no-services", "--ready-timeout", "30")
    assert started.returncode == 0, started.stderr
    assert port_is_open(HOST, cli.broker_port) and port_is_open(HOST, cli.database_port)
    assert port_is_open(HOST, cli.mail_port)  # the SMTP sink
    pids = recorded_pids(cli)
    assert len(pids) == 3 and all(pid_alive(pid) for pid in pids)

    shown = cli.run("status")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    for name, port in (
        ("broker", cli.broker_port),
        ("database", cli.database_port),
        ("mail", cli.mail_port),
    ):
        line = next(row for row in shown.stdout.splitlines() if name in row)
        assert str(port) in line and "ready" in line

    with MongoClient(mongo_uri(HOST, cli.database_port)) as client:
        client.demo.kept.insert_one({"_id": "survives-down", "value": 42})

    stopped = cli.run("down")
    assert stopped.returncode == 0, stopped.stderr
    assert not port_is_open(HOST, cli.broker_port)
    assert not port_is_open(HOST, cli.database_port)
    assert not port_is_open(HOST, cli.mail_port)
    assert not any(pid_alive(pid) for pid in pids)
    assert cli.run("status").returncode == 3

    again = cli.run("up", "--detach", "--no-services")
    assert again.returncode == 0, again.stderr
    with MongoClient(mongo_uri(HOST, cli.database_port)) as client:
        assert client.demo.kept.find_one({"_id": "survives-down"}) == {
            "_id": "survives-down",
            "value": 42,
        }


def test_a_taken_port_fails_fast_and_leaves_nothing_running(cli) -> None:
    with socket.socket() as squatter:
        squatter.bind((HOST, cli.database_port))
        squatter.listen()
        result = cli.run("up", "--detach", "--no-services", timeout=20)
    assert result.returncode == 1
    message = " ".join(result.stderr.split())
    assert f"port {cli.database_port}" in message and "database" in message
    assert not port_is_open(HOST, cli.broker_port), "the broker must not have been started"
    assert not (cli.state_dir / "stack.json").exists()


def test_foreground_up_stops_everything_on_ctrl_c(cli) -> None:
    proc = subprocess.Popen(
        cli.args("up", "--no-services"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        # Until `up` says so, Ctrl-C would abort the start instead of stopping a running stack.
        assert proc.stderr is not None
        printed = read_until(proc.stderr, [RUNNING])
        assert "started broker" in printed and "started database" in printed, printed
        assert "started mail" in printed, printed
        pids = recorded_pids(cli)
        assert len(pids) == 3
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    assert not port_is_open(HOST, cli.broker_port)
    assert not port_is_open(HOST, cli.database_port)
    assert not port_is_open(HOST, cli.mail_port)
    assert not any(pid_alive(pid) for pid in pids)


def test_second_up_refuses_while_running(cli) -> None:
    assert cli.run("up", "--detach", "--no-services").returncode == 0
    second = cli.run("up", "--detach", "--no-services")
    assert second.returncode == 1
    assert "already running" in " ".join(second.stderr.split())


def test_reset_needs_yes_and_refuses_while_running(cli) -> None:
    assert cli.run("up", "--detach", "--no-services").returncode == 0
    assert cli.run("reset").returncode == 2
    assert cli.run("reset", "--yes").returncode == 1
    assert cli.run("down").returncode == 0
    assert (cli.state_dir / "database").exists()
    assert cli.run("reset", "--yes").returncode == 0
    assert not cli.state_dir.exists()


@pytest.mark.parametrize("bad", ["identity", "identity=notaport", "identity=70000"])
def test_bad_port_option_is_refused(cli, bad: str) -> None:
    result = cli.run("up", "--detach", "--port", bad)
    assert result.returncode == 2
    assert "NAME=PORT" in result.stderr


def test_environment_variables_configure_up_status_and_down(cli) -> None:
    """No option on the command line: state folder and ports come from MMGEN_* alone."""
    env = {
        **os.environ,
        "MMGEN_STATE_DIR": str(cli.state_dir),
        "MMGEN_BROKER_PORT": str(cli.broker_port),
        "MMGEN_DATABASE_PORT": str(cli.database_port),
    }

    def mmgen(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [MMGEN, *args], capture_output=True, text=True, timeout=90, check=False, env=env
        )

    started = mmgen("up", "--detach", "--no-services")
    assert started.returncode == 0, started.stderr
    assert port_is_open(HOST, cli.broker_port) and port_is_open(HOST, cli.database_port)
    assert (cli.state_dir / "stack.json").exists()
    with MongoClient(mongo_uri(HOST, cli.database_port)) as client:
        assert client.admin.command("hello")["isWritablePrimary"]
    shown = mmgen("status")
    assert shown.returncode == 0 and f"{HOST}:{cli.broker_port}" in shown.stdout
    assert mmgen("down").returncode == 0
    assert not port_is_open(HOST, cli.broker_port)
    assert not port_is_open(HOST, cli.database_port)
