"""Kafka security settings become the options of every client the kernel makes."""

from __future__ import annotations

import ssl
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from faststream.kafka.security import parse_security
from faststream.security import SASLScram512

from mmgen.events import heads, relay, republish, topics
from mmgen.events.kafka_security import PLAINTEXT, KafkaSecurity, KafkaSecurityError
from mmgen.events.store import InMemoryEventStore

SCRAM_TLS = KafkaSecurity(
    protocol="SASL_SSL", mechanism="SCRAM-SHA-512", username="identity", password="s3cr3t-pw"
)


class Captured(BaseException):
    """Raised by a recording client once it has its options (not an Exception: no retry loop
    of the kernel swallows it)."""

    def __init__(self, kwargs: dict[str, Any]) -> None:
        super().__init__("captured")
        self.kwargs = kwargs


class Recording:
    """Stands in for an aiokafka client class: `start()` raises `Captured` with its options."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.kwargs = kwargs

    async def start(self) -> None:
        raise Captured(self.kwargs)

    async def stop(self) -> None:
        return None

    async def close(self) -> None:
        return None


def _assert_scram_tls(kwargs: dict[str, Any]) -> None:
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kwargs["sasl_plain_username"] == "identity"
    assert kwargs["sasl_plain_password"] == "s3cr3t-pw"
    context = kwargs["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_plaintext_adds_nothing() -> None:
    assert PLAINTEXT.client_config() == {}
    assert PLAINTEXT.faststream() is None


def test_scram_over_tls_gives_aiokafka_and_faststream_the_same_options() -> None:
    _assert_scram_tls(SCRAM_TLS.client_config())
    security = SCRAM_TLS.faststream()
    assert isinstance(security, SASLScram512)
    parsed = parse_security(security)
    assert {k: v for k, v in parsed.items() if k != "ssl_context"} == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "identity",
        "sasl_plain_password": "s3cr3t-pw",
    }
    assert isinstance(parsed["ssl_context"], ssl.SSLContext)
    assert "s3cr3t-pw" not in repr(SCRAM_TLS)


def test_a_ca_file_is_the_one_trusted(tmp_path: Path) -> None:
    missing = tmp_path / "ca.pem"
    with pytest.raises(FileNotFoundError):
        KafkaSecurity(protocol="SSL", ca_file=str(missing)).client_config()
    assert KafkaSecurity(protocol="SSL").client_config()["security_protocol"] == "SSL"


@pytest.mark.parametrize(
    "fields",
    [
        {"protocol": "SASL_SSL"},
        {"protocol": "SASL_PLAINTEXT", "mechanism": "SCRAM-SHA-512", "username": "u"},
        {"protocol": "SASL_SSL", "mechanism": "GSSAPI", "username": "u", "password": "p"},
        {"protocol": "PLAINTEXT", "username": "u", "password": "p"},
        {"protocol": "PLAINTEXT", "ca_file": "/etc/ca.pem"},
        {"protocol": "TLS"},
    ],
)
def test_incomplete_or_contradictory_settings_are_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(KafkaSecurityError):
        KafkaSecurity(**fields)


class _Untouched:
    """A collection the relay only configures (read and write concerns) before it runs."""

    def with_options(self, **_: object) -> _Untouched:
        return self


async def test_every_client_of_the_kernel_is_made_with_the_security(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(topics, "AIOKafkaAdminClient", Recording)
    with pytest.raises(Captured) as admin:
        await topics.ensure_topics("kafka:9092", ["t.events"], partitions=3, security=SCRAM_TLS)
    _assert_scram_tls(admin.value.kwargs)

    monkeypatch.setattr(relay, "AIOKafkaProducer", Recording)

    no_database = defaultdict(_Untouched)  # the relay touches no collection before it runs
    the_relay = relay.Relay(
        InMemoryEventStore("identity"),
        no_database,  # type: ignore[arg-type]
        "kafka:9092",
        "identity.events",
        security=SCRAM_TLS,
    )
    with pytest.raises(Captured) as producer:
        await the_relay.start()
    _assert_scram_tls(producer.value.kwargs)
    assert producer.value.kwargs["acks"] == "all"  # the relay's own options are kept

    monkeypatch.setattr(republish, "AIOKafkaConsumer", Recording)
    listener = republish.RepublishListener(the_relay, "kafka:9092", security=SCRAM_TLS)
    with pytest.raises(Captured) as consumer:
        await listener.start()
    _assert_scram_tls(consumer.value.kwargs)

    monkeypatch.setattr(heads, "AIOKafkaProducer", Recording)
    announcer = heads.HeadAnnouncer(
        "identity", "kafka:9092", "events.heads", lambda: None, security=SCRAM_TLS
    )
    with pytest.raises(Captured) as announcing:
        await announcer._run()
    _assert_scram_tls(announcing.value.kwargs)
