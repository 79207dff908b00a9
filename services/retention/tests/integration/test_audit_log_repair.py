"""An `audit.log` entry the broker lost is asked for again and the audit feed goes on past it.

Consent's audit store holds entries 0..N-1 and its publisher's cursor is past all of them (it
sent them, the broker acked), but `audit.log` on the session's real broker lacks one: the loss
the local broker inflicts after it restarts empty, arranged here by writing the topic with the
publisher's own message builder minus that entry. Retention's reader (real broker, real
database) stalls at the lost seq, asks on `audit.republish`, consent's audit component (started
afterwards, as after an outage: the request waits for it) publishes the entry again from its
store, and the feed applies every entry once, in order. Without the repair the feed waits at
that seq for good and the deadline fails the test.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from mmgen.consent.audit import build_audit
from mmgen.consent.audit.publisher import CURSOR, send_entries
from mmgen.events.kafka_testing import wait_until
from mmgen.events.republish import republish_topic
from mmgen.events.topics import ensure_topics
from mmgen.localstack.pytest_plugin import unique_name
from mmgen.platform.health import run_check
from mmgen.retention.adapters.audit_log import AuditLogReader, MongoAuditInbox

from .feed_kit import Applied, running

PARTITIONS = 4
TOTAL = 12
LOST = 5


@pytest.fixture
async def consent_db(mongo_client: Any) -> AsyncIterator[Any]:
    """Consent's database: a service's own, apart from retention's."""
    name = unique_name("t_consent_")
    try:
        yield mongo_client[name]
    finally:
        await mongo_client.drop_database(name)


def item(n: int) -> dict[str, Any]:
    """An event's entry fields, as consent's audit projector makes them."""
    subject = str(uuid.uuid4())
    return {
        "event_id": str(uuid.uuid4()),
        "producer": "identity",
        "producer_seq": n + 1,
        "event_type": "identity.ProfileRead",
        "action": "read",
        "occurred_at": datetime.now(UTC),
        "subject_id": subject,
        "actor_id": str(uuid.uuid4()),
        "actor_role": "staff",
        "purpose": "support",
        "resource": {"type": "account", "id": subject},
        "categories": ("contact",),
    }


async def test_an_entry_the_topic_lost_is_published_again_and_the_feed_goes_past_it(
    kafka_bootstrap: str, mongo_db: Any, consent_db: Any, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}audit.log"
    consent_metrics = CollectorRegistry()
    audit = build_audit(
        SimpleNamespace(
            kafka_bootstrap=kafka_bootstrap,
            topic_prefix=topic_prefix,
            audit_origin="test.local/audit",
            audit_consumer_group=f"{topic_prefix}consent-audit",
            topic_partitions=PARTITIONS,
            consumer_session_timeout_ms=2000,
            consumer_heartbeat_interval_ms=500,
        ),
        consent_db,
        registry=consent_metrics,
        metadata_max_age_ms=500,
    )
    await audit.store.ensure_indexes()
    await audit.store.append([item(n) for n in range(TOTAL)])
    await audit.store.advance_cursor(CURSOR, TOTAL)  # all sent and acked, as far as it knows
    docs = await audit.store.window(0, TOTAL)
    assert [d["_id"] for d in docs] == list(range(TOTAL))
    await ensure_topics(kafka_bootstrap, [topic], partitions=PARTITIONS)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await send_entries(producer, topic, [d for d in docs if d["_id"] != LOST])
    finally:
        await producer.stop()

    applied, retention_metrics = Applied(), CollectorRegistry()
    inbox = MongoAuditInbox(mongo_db)
    await inbox.ensure_indexes()
    reader = AuditLogReader(
        db=mongo_db,
        inbox=inbox,
        apply=applied,
        bootstrap=kafka_bootstrap,
        topic=topic,
        group_id=f"{topic_prefix}retention-audit",
        partitions=PARTITIONS,
        registry=retention_metrics,
        session_timeout_ms=2000,
        heartbeat_interval_ms=500,
        idle_wait_s=0.2,
        hole_repair_s=0.5,
        republish_to=republish_topic(topic_prefix),
    )
    async with running(reader):
        # The feed applies up to the lost entry, stops there and asks for it.
        await wait_until(
            lambda: reader.tailer.status.checkpoint == LOST - 1 and reader.repair.requests >= 1,
            timeout_s=60,
            what="the feed stopped at the lost entry and asked for it",
        )
        assert reader.tailer.status.hole_at == LOST
        ready = await run_check(reader.readiness_check, 5.0)
        assert ready.ok and ready.detail.startswith(f"waiting for audit seq {LOST} ("), ready
        assert "repair asked" in ready.detail and f"(last for {LOST}..{LOST})" in ready.detail
        assert (
            retention_metrics.get_sample_value("mmgen_retention_audit_feed_repair_requests_total")
            or 0
        ) >= 1

        await audit.start()  # the log's keeper comes (back): it serves what waits for it
        try:
            await wait_until(
                lambda: reader.tailer.status.checkpoint == TOTAL - 1,
                timeout_s=60,
                what="the feed applied past the lost entry",
            )
            assert (consent_metrics.get_sample_value("mmgen_audit_republished_total") or 0) >= 1
            assert audit.republish_listener is not None
            assert any(r.published >= 1 and not r.missing for r in audit.republish_listener.served)
        finally:
            await audit.stop()
        ready = await run_check(reader.readiness_check, 5.0)
        assert ready.detail == f"applied through audit seq {TOTAL - 1}", ready
    assert applied.seqs == list(range(TOTAL))  # every entry once, in the log's order
