"""What `mmgen up` is asked to start: defaults, `MMGEN_*` variables, options over variables,
and the settings each service is given for the ports chosen (no process is started here)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmgen.cli import main, stack

VARIABLES = (
    "MMGEN_STATE_DIR",
    "MMGEN_HOST",
    "MMGEN_BROKER_PORT",
    "MMGEN_DATABASE_PORT",
    "MMGEN_SERVICE_PORTS",
)


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[stack.StackConfig]:
    """Replace the launcher: record the config `up` built, start nothing."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    configs: list[stack.StackConfig] = []

    def fake_up(config: stack.StackConfig, on_started: object = None) -> list[stack.Component]:
        configs.append(config)
        return []

    monkeypatch.setattr(stack, "up", fake_up)
    return configs


def invoke(*args: str, env: dict[str, str] | None = None) -> str:
    result = CliRunner().invoke(main.app, ["up", "--detach", *args], env=env)
    assert result.exit_code == 0, result.output
    return result.output


def test_defaults(captured: list[stack.StackConfig]) -> None:
    invoke()
    [config] = captured
    assert config.state_dir == Path(".mmgen")
    assert config.host == "127.0.0.1"
    assert (config.broker_port, config.database_port) == (9092, 27017)
    assert config.service_ports == {}
    assert [config.port_of(name) for name in stack.DEFAULT_SERVICE_PORTS] == [
        8001,
        8002,
        8003,
        8004,
        8005,
        8006,
        8009,
    ]
    assert config.kafka_bootstrap == "127.0.0.1:9092"
    assert config.mongo_uri == "mongodb://127.0.0.1:27017/?directConnection=true"
    assert config.with_services and config.ready_timeout == 30.0


def test_environment_variables(captured: list[stack.StackConfig], tmp_path: Path) -> None:
    invoke(
        env={
            "MMGEN_STATE_DIR": str(tmp_path),
            "MMGEN_HOST": "127.0.0.2",
            "MMGEN_BROKER_PORT": "19092",
            "MMGEN_DATABASE_PORT": "37017",
            "MMGEN_SERVICE_PORTS": "identity=9001  consent=9004",
        }
    )
    [config] = captured
    assert config.state_dir == tmp_path
    assert config.host == "127.0.0.2"
    assert (config.broker_port, config.database_port) == (19092, 37017)
    assert config.service_ports == {"identity": 9001, "consent": 9004}
    assert config.port_of("retention") == 8005  # not named: its default
    assert config.service_url("consent") == "http://127.0.0.2:9004"


def test_options_win_over_environment_variables(captured: list[stack.StackConfig]) -> None:
    invoke(
        "--broker-port",
        "29092",
        "--port",
        "identity=9101",
        env={"MMGEN_BROKER_PORT": "19092", "MMGEN_SERVICE_PORTS": "identity=9001"},
    )
    [config] = captured
    assert config.broker_port == 29092
    assert config.service_ports == {"identity": 9101}


@pytest.mark.parametrize(
    "args",
    [["--broker-port", "0"], ["--database-port", "70000"], ["--port", "identity=0"]],
)
def test_out_of_range_ports_are_usage_errors(
    captured: list[stack.StackConfig], args: list[str]
) -> None:
    result = CliRunner().invoke(main.app, ["up", "--detach", *args])
    assert result.exit_code == 2, result.output
    assert captured == []


def test_each_service_is_told_the_ports_chosen(tmp_path: Path) -> None:
    config = stack.StackConfig(
        state_dir=tmp_path,
        broker_port=19092,
        database_port=37017,
        service_ports={"identity": 9001, "consent": 9004},
    )
    env = stack.service_env(config, "consent")
    assert env["CONSENT_PORT"] == "9004"
    assert env["CONSENT_KAFKA_BOOTSTRAP"] == "127.0.0.1:19092"
    assert env["CONSENT_MONGO_URI"] == "mongodb://127.0.0.1:37017/?directConnection=true"
    assert env["CONSENT_JWKS_URL"] == "http://127.0.0.1:9001/.well-known/jwks.json"
    assert env["CONSENT_STATE_DIR"] == str(tmp_path.resolve())
    assert env["MMGEN_IDENTITY_URL"] == "http://127.0.0.1:9001"
    assert env["MMGEN_RETENTION_URL"] == "http://127.0.0.1:8005"
    # Mail goes to the stack's own SMTP sink.
    assert (env["CONSENT_SMTP_HOST"], env["CONSENT_SMTP_PORT"]) == ("127.0.0.1", "2525")


def test_two_components_on_one_port_are_refused(tmp_path: Path) -> None:
    services = [stack.ServiceEntry("identity", "x:y"), stack.ServiceEntry("consent", "x:z")]
    config = stack.StackConfig(state_dir=tmp_path, service_ports={"consent": 8001})
    with pytest.raises(stack.PortConflictError, match=r"identity and consent .* port 8001"):
        stack.planned_ports(config, services)
    config = stack.StackConfig(state_dir=tmp_path, database_port=9092)
    with pytest.raises(stack.PortConflictError, match=r"broker and database .* port 9092"):
        stack.planned_ports(config, [])
    assert stack.planned_ports(stack.StackConfig(state_dir=tmp_path), services) == [
        ("broker", 9092),
        ("database", 27017),
        ("mail", 2525),
        ("identity", 8001),
        ("consent", 8004),
    ]
