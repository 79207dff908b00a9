"""`<PREFIX>KAFKA_SECURITY_PROTOCOL` and its companions reach every Kafka client of a service."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import aiokafka.client
import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

from mmgen.events import topics
from mmgen.events.registry import EventRegistry
from mmgen.runtime.service import ServiceRuntime
from mmgen.runtime.settings import LOCAL_BROKER_FETCH_MAX_WAIT_MS, EventServiceSettings
from mmgen.runtime.testing import random_secrets

SASL = {
    "SVC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "SVC_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "SVC_KAFKA_SASL_USERNAME": "svc",
    "SVC_KAFKA_SASL_PASSWORD": "a-long-random-kafka-password",
}


class _Settings(EventServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SVC_", extra="ignore", frozen=True)
    service_name: str = "svc"


class Captured(BaseException):
    def __init__(self, kwargs: dict[str, Any]) -> None:
        super().__init__("captured")
        self.kwargs = kwargs


class Recording:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.kwargs = kwargs

    async def start(self) -> None:
        raise Captured(self.kwargs)

    async def bootstrap(self) -> None:
        raise Captured(self.kwargs)

    async def close(self) -> None:
        return None


def _settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> _Settings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return _Settings(environment="test", **random_secrets(_Settings))


def _assert_sasl(kwargs: dict[str, Any]) -> None:
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kwargs["sasl_plain_username"] == "svc"
    assert kwargs["sasl_plain_password"] == "a-long-random-kafka-password"
    assert isinstance(kwargs["ssl_context"], ssl.SSLContext)


def test_the_local_default_is_plaintext(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(monkeypatch)
    assert settings.kafka_security().client_config() == {}


def test_sasl_without_credentials_is_refused_at_load_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ValidationError, match="SVC_KAFKA_SECURITY_PROTOCOL"):
        _settings(monkeypatch, SVC_KAFKA_SECURITY_PROTOCOL="SASL_SSL")


async def test_the_runtimes_admin_inbox_and_readiness_clients_get_the_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _settings(monkeypatch, **SASL)
    runtime = ServiceRuntime(settings, EventRegistry())
    try:
        monkeypatch.setattr(topics, "AIOKafkaAdminClient", Recording)
        with pytest.raises(Captured) as admin:
            await runtime.ensure_topics()
        _assert_sasl(admin.value.kwargs)

        broker = runtime.inbox_broker()
        _assert_sasl(broker.config.broker_config.builder.keywords)

        monkeypatch.setattr(aiokafka.client, "AIOKafkaClient", Recording)
        [readiness] = [c for c in runtime.readiness_checks() if c.name == "broker"]
        with pytest.raises(Captured) as probe:
            await readiness.check()
        _assert_sasl(probe.value.kwargs)
    finally:
        assert runtime.client is not None
        await runtime.client.close()


def test_the_local_stack_waits_less_for_a_fetch_unless_told(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The local broker answers a fetch only when its wait ends; Kafka as soon as records come."""
    assert _Settings(environment="test").consumer_fetch_max_wait_ms == 500  # Kafka's default
    local = _Settings(environment="development", state_dir=tmp_path)
    assert local.consumer_fetch_max_wait_ms == LOCAL_BROKER_FETCH_MAX_WAIT_MS
    chosen = LOCAL_BROKER_FETCH_MAX_WAIT_MS + 150  # neither default: the setting must win
    monkeypatch.setenv("SVC_CONSUMER_FETCH_MAX_WAIT_MS", str(chosen))
    assert (
        _Settings(environment="development", state_dir=tmp_path).consumer_fetch_max_wait_ms
        == chosen
    )
