"""Two replicas of the audit log on one database: one writes, the other stands by and takes
over within the lease when the first stops; every event is in the log once."""

from __future__ import annotations

import json
from typing import Any

from prometheus_client import CollectorRegistry

from mmgen.auditlog.verify import verify_log
from mmgen.consent.audit import build_audit
from mmgen.events.topics import Topics, ensure_topics

from .test_audit_projector import entries_of, send

LEASE_S = 1.0


async def test_a_standby_takes_over_within_the_lease_and_nothing_is_logged_twice(
    audit_settings: Any,
    mongo_db: Any,
    kafka_bootstrap: str,
    topic_prefix: str,
    envelope: Any,
    eventually: Any,
) -> None:
    def replica() -> Any:
        return build_audit(
            audit_settings,
            mongo_db,
            registry=CollectorRegistry(),
            metadata_max_age_ms=500,
            lease_ttl_seconds=LEASE_S,
        )

    first, second = replica(), replica()
    await first.start()
    await second.start()
    try:
        assert first.leading and not second.leading
        assert second.projector is None  # a standby runs no writer at all
        topic = Topics(topic_prefix).events("identity")
        await ensure_topics(kafka_bootstrap, [topic], partitions=4)
        await send(kafka_bootstrap, topic, [envelope("identity", s).to_wire() for s in range(1, 6)])
        await eventually(lambda: _size_is(first, 5))

        await first.stop()
        await eventually(lambda: _leading(second), timeout_s=10 * LEASE_S)
        await send(
            kafka_bootstrap, topic, [envelope("identity", s).to_wire() for s in range(6, 11)]
        )
        await eventually(lambda: _size_is(second, 10))
        entries = await entries_of(second)
        assert sorted(e["producer_seq"] for e in entries) == list(range(1, 11))
        head = await second.store.head()
        docs = [json.loads(d["e"]) async for d in second.store.iter_documents(0, head.size)]
        assert verify_log(docs).valid
    finally:
        await second.stop()
        await first.stop()


async def _size_is(component: Any, n: int) -> bool:
    return (await component.store.head()).size == n


async def _leading(component: Any) -> bool:
    return bool(component.leading)
