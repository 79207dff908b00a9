"""`mmgen up` and the system fixtures start the services together, each waiting for its own
`/readyz`; one that fails stops the others, ready or still starting.

The services here are small ASGI apps run by uvicorn exactly as real ones are. Each is ready
only once every other one has started, so starting them one after another could never get
past the first: these tests fail on a sequential start whatever the machine's speed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mmgen.cli import stack
from mmgen.localstack.errors import ComponentExitedError
from mmgen.localstack.ports import free_port, port_is_open

from ..conftest import HOST, leftover_processes

FAKES = """
import os
import pathlib
import time


def _service(name, others):
    markers = pathlib.Path(os.environ["FAKE_MARKERS"])
    if name in os.environ.get("FAKE_CRASH", "").split():
        deadline = time.monotonic() + 60
        while not all((markers / f"{o}.started").exists() for o in others):
            if time.monotonic() > deadline:
                raise SystemExit(f"{name}: the others never started")
            time.sleep(0.05)
        raise SystemExit(f"{name}: refusing to start (FAKE_CRASH)")
    (markers / f"{name}.started").write_text(str(os.getpid()))

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        ready = all((markers / f"{other}.started").exists() for other in others)
        status = 200 if scope["path"] == "/readyz" and ready else 503
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app


def alpha():
    return _service("alpha", ["beta", "gamma"])


def beta():
    return _service("beta", ["alpha", "gamma"])


def gamma():
    return _service("gamma", ["alpha", "beta"])
"""
NAMES = ("alpha", "beta", "gamma")


@pytest.fixture
def fakes(tmp_path: Path) -> list[stack.ServiceEntry]:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "fake_services.py").write_text(FAKES)
    (tmp_path / "markers").mkdir()
    return [stack.ServiceEntry(name, f"fake_services:{name}") for name in NAMES]


def fake_config(tmp_path: Path, **extra_env: str) -> stack.StackConfig:
    return stack.StackConfig(
        state_dir=tmp_path / "state",
        broker_port=free_port(),
        database_port=free_port(),
        mail_port=free_port(),
        service_ports={name: free_port() for name in NAMES},
        ready_timeout=60.0,
        extra_env={
            "PYTHONPATH": str(tmp_path / "code"),
            "FAKE_MARKERS": str(tmp_path / "markers"),
            **extra_env,
        },
    )


def assert_nothing_left(config: stack.StackConfig, ports: list[int]) -> None:
    assert [port for port in ports if port_is_open(HOST, port)] == []
    assert leftover_processes(config.state_dir, ports) == []
    assert not config.record_path.exists()


def test_services_start_together(tmp_path: Path, fakes: list[stack.ServiceEntry]) -> None:
    config = fake_config(tmp_path)
    ready: list[str] = []
    components = stack.start_services(config, fakes, on_started=lambda c: ready.append(c.name))
    try:
        assert sorted(ready) == sorted(NAMES)
        assert [c.name for c in components] == list(NAMES)
        assert all(c.is_ours() and c.probe() for c in components)
        recorded = stack.StackRecord(config.record_path).load()
        assert [c.pid for c in recorded] == [c.pid for c in components]
    finally:
        stack.stop_components(components)
    assert not any(c.is_ours() for c in components)


@pytest.mark.slow
def test_up_starts_the_services_together_after_the_infrastructure(
    tmp_path: Path, fakes: list[stack.ServiceEntry], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stack, "discover_services", lambda: fakes)
    config = fake_config(tmp_path)
    ready: list[str] = []
    components = stack.up(config, on_started=lambda c: ready.append(c.name))
    try:
        assert sorted(ready[:3]) == ["broker", "database", "mail"]
        assert sorted(ready[3:]) == sorted(NAMES)
        assert [c.kind for c in components] == ["broker", "database", "mail", *["service"] * 3]
    finally:
        stopped = stack.down(config)
    assert [c.kind for c in stopped] == ["service"] * 3 + ["mail", "database", "broker"]
    assert_nothing_left(config, [c.port for c in components])


def test_a_service_that_fails_stops_the_others_still_starting(
    tmp_path: Path, fakes: list[stack.ServiceEntry]
) -> None:
    """gamma exits once alpha and beta have started; they wait for gamma, so they are still
    starting when it fails: they must be stopped, not left starting."""
    config = fake_config(tmp_path, FAKE_CRASH="gamma")
    with pytest.raises(ComponentExitedError) as caught:
        stack.start_services(config, fakes)
    assert caught.value.component == "gamma"
    assert "gamma: refusing to start (FAKE_CRASH)" in str(caught.value)
    assert_nothing_left(config, list(config.service_ports.values()))
