"""The audit log's publisher reads the tail of `audit.log` on taking over with the service's
Kafka security: on a SASL listener a client without it never connects, and the audit log
would not start writing."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from mmgen.consent.audit import publisher
from mmgen.consent.audit.metrics import AuditMetrics
from mmgen.consent.audit.publisher import AuditLogPublisher
from mmgen.events.kafka_security import KafkaSecurity

SCRAM = KafkaSecurity(
    protocol="SASL_PLAINTEXT", mechanism="SCRAM-SHA-512", username="consent", password="pw-123456"
)


class Captured(BaseException):
    """Raised by a recording client once it has its options (not an Exception: no retry loop
    swallows it)."""

    def __init__(self, kwargs: dict[str, Any]) -> None:
        super().__init__("captured")
        self.kwargs = kwargs


class Recording:
    """Stands in for an aiokafka client class: `start()` raises `Captured` with its options."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.kwargs = kwargs

    async def start(self) -> None:
        raise Captured(self.kwargs)


class InMemoryCursorStore:
    """The one store call `skip_published` makes before reading the topic."""

    async def cursor(self, name: str) -> int:
        return 0


def _assert_scram(kwargs: dict[str, Any]) -> None:
    assert kwargs["security_protocol"] == "SASL_PLAINTEXT"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kwargs["sasl_plain_username"] == "consent"
    assert kwargs["sasl_plain_password"] == "pw-123456"


async def test_the_takeover_reads_audit_log_with_the_services_security(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(publisher, "AIOKafkaAdminClient", Recording)
    audit = AuditLogPublisher(
        InMemoryCursorStore(),  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]  # nothing is sent before the tail is read
        "audit.log",
        metrics=AuditMetrics(CollectorRegistry()),
    )
    with pytest.raises(Captured) as admin:
        await audit.skip_published("kafka:9092", security=SCRAM)
    _assert_scram(admin.value.kwargs)


async def test_the_tail_reader_consumes_with_the_services_security(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    class Described(Recording):
        async def start(self) -> None:
            return None

        async def describe_topics(self, names: list[str]) -> list[dict[str, Any]]:
            return [{"topic": names[0], "partitions": [{"partition": 0}]}]

        async def close(self) -> None:
            return None

    monkeypatch.setattr(publisher, "AIOKafkaAdminClient", Described)
    monkeypatch.setattr(publisher, "AIOKafkaConsumer", Recording)
    with pytest.raises(Captured) as consumer:
        await publisher.published_seqs("kafka:9092", "audit.log", 10, 5.0, security=SCRAM)
    _assert_scram(consumer.value.kwargs)
