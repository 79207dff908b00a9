"""`mmgen up` when a later component fails: it names the component, its port and the last lines
of its log, and stops everything it had already started (ports closed, no process left)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time

import pytest

from mmgen.localstack.ports import port_is_open

from ..conftest import HOST, leftover_processes

pytestmark = pytest.mark.slow


def words(text: str) -> str:
    """Rich wraps long lines; compare with whitespace collapsed."""
    return " ".join(text.split())


def assert_nothing_left(cli) -> None:
    still_open = [port for port in cli.all_ports if port_is_open(HOST, port)]
    assert still_open == [], f"ports still open: {still_open}"
    assert leftover_processes(cli.state_dir, cli.all_ports) == []
    assert not (cli.state_dir / "stack.json").exists()


def recorded(cli) -> list[str]:
    try:
        record = json.loads((cli.state_dir / "stack.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return []
    return [component["name"] for component in record["components"]]


def test_a_service_that_exits_at_once_stops_everything_else_started(cli) -> None:
    if not {"identity", "consent"} <= set(cli.service_ports):
        pytest.skip("needs identity and a second service (consent)")
    # Consent refuses this setting at start-up, while identity (started with it) is starting.
    result = cli.run("up", "--detach", env={"CONSENT_TOPIC_PARTITIONS": "0"}, timeout=180)

    assert result.returncode == 1, result.stdout + result.stderr
    message = words(result.stderr)
    port = cli.service_ports["consent"]
    assert f"consent (port {port}) exited before it became ready" in message
    assert "last lines of its log" in message
    assert "topic_partitions" in message, "the log's last lines must show why"
    # Shown as written, not swallowed as rich markup.
    assert "[type=greater_than_equal" in message
    assert str(cli.state_dir / "logs" / "consent.log") in message
    for component in ("broker", "database"):
        assert f"started {component}" in message
    assert (cli.state_dir / "logs" / "identity.log").exists(), "identity was never started"
    assert_nothing_left(cli)


def test_a_taken_service_port_fails_before_anything_starts(cli) -> None:
    if "identity" not in cli.service_ports:
        pytest.skip("identity is not installed")
    port = cli.service_ports["identity"]
    with socket.socket() as squatter:
        squatter.bind((HOST, port))
        squatter.listen()
        result = cli.run("up", "--detach", timeout=30)
    assert result.returncode == 1
    assert f"identity: port {port} on {HOST} is already in use" in words(result.stderr)
    assert "started" not in result.stderr
    assert_nothing_left(cli)


def test_two_components_on_one_port_are_refused_before_anything_starts(cli) -> None:
    result = cli.run("up", "--detach", "--port", f"identity={cli.broker_port}", timeout=30)
    assert result.returncode == 1
    assert f"broker and identity are both configured on port {cli.broker_port}" in words(
        result.stderr
    )
    assert "started" not in result.stderr
    cli.service_ports.pop("identity", None)
    assert_nothing_left(cli)


def test_sigterm_while_starting_stops_what_was_started(cli) -> None:
    if not cli.service_ports:
        pytest.skip("no service installed: nothing takes long enough to interrupt")
    proc = subprocess.Popen(cli.args("up"), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        # Every component is spawned (recorded); the services take seconds to become ready.
        expected = ["broker", "database", "mail", *cli.service_ports]
        while recorded(cli) != expected and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        assert recorded(cli) == expected, "the services were never started"
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr.decode()
    assert "interrupted while starting" in words(stderr.decode())
    assert_nothing_left(cli)
