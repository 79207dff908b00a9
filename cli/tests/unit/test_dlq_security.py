"""`mmgen dlq` connects to a SASL/TLS broker with the `MMGEN_KAFKA_*` security variables."""

from __future__ import annotations

from typing import Any

import pytest
import typer

from mmgen.cli import dlq

SASL = {
    "MMGEN_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
    "MMGEN_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "MMGEN_KAFKA_SASL_USERNAME": "operator",
    "MMGEN_KAFKA_SASL_PASSWORD": "an-operator-password",
}


class Captured(BaseException):
    def __init__(self, kwargs: dict[str, Any]) -> None:
        super().__init__("captured")
        self.kwargs = kwargs


class Recording:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.kwargs = kwargs

    async def start(self) -> None:
        raise Captured(self.kwargs)


def test_unset_is_the_local_brokers_plaintext(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in dlq.SECURITY_VARIABLES.values():
        monkeypatch.delenv(variable, raising=False)
    assert dlq.kafka_security_from_env().client_config() == {}


def test_sasl_without_a_password_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MMGEN_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    with pytest.raises(typer.BadParameter, match="MMGEN_KAFKA_SECURITY_PROTOCOL"):
        dlq.kafka_security_from_env()


async def test_the_dlq_clients_get_the_security(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable, value in SASL.items():
        monkeypatch.setenv(variable, value)
    security = dlq.kafka_security_from_env()
    monkeypatch.setattr(dlq, "AIOKafkaAdminClient", Recording)
    monkeypatch.setattr(dlq, "AIOKafkaConsumer", Recording)
    for call in (
        dlq.dlq_topics("kafka:9092", "", security),
        dlq.list_dead_letters("kafka:9092", ["identity.events.dlq"], security),
        dlq.replay("kafka:9092", "identity.events.dlq", security=security),
    ):
        with pytest.raises(Captured) as captured:
            await call
        assert captured.value.kwargs["security_protocol"] == "SASL_PLAINTEXT"
        assert captured.value.kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
        assert captured.value.kwargs["sasl_plain_username"] == "operator"
        assert captured.value.kwargs["sasl_plain_password"] == "an-operator-password"
