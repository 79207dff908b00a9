"""The relay's Prometheus metrics keep their names on the tailer (dashboards and alerts use
them): published, checkpoint, hole, errors, labelled by producer."""

from __future__ import annotations

import uuid
from typing import Any

from prometheus_client import CollectorRegistry

from mmgen.events.envelope import Envelope
from mmgen.events.relay import Relay, RelaySettings
from mmgen.events.store import InMemoryEventStore
from mmgen.events.topics import Topics, ensure_topics


class HidingStore(InMemoryEventStore):
    """Hides sequence numbers from reads: a hole on purpose."""

    hidden: frozenset[int] = frozenset()

    async def read_range(self, start_seq: int, end_seq: int) -> list[Envelope]:
        events = await super().read_range(start_seq, end_seq)
        return [e for e in events if e.producer_seq not in self.hidden]


async def test_relay_metrics_keep_their_names(
    kafka_bootstrap: str, mongo_db: Any, topic_prefix: str, make_envelope: Any
) -> None:
    producer = f"metrics{uuid.uuid4().hex[:6]}"
    topic = Topics(topic_prefix).events(producer)
    await ensure_topics(kafka_bootstrap, [topic], partitions=1)
    store = HidingStore(producer)
    for _ in range(10):
        event = make_envelope(producer=producer)
        await store.append(event.stream_id, 0, [event])
    store.hidden = frozenset({4})
    registry = CollectorRegistry()
    relay = Relay(
        store, mongo_db, kafka_bootstrap, topic, settings=RelaySettings(), registry=registry
    )

    def sample(name: str) -> float | None:
        return registry.get_sample_value(f"mmgen_events_relay_{name}", {"producer": producer})

    await relay.start()
    try:
        assert await relay.acquire()
        assert await relay.publish_next() == 3
        assert (sample("published_total"), sample("checkpoint"), sample("hole_at")) == (3, 3, 4)
        store.hidden = frozenset()
        assert await relay.publish_next() == 7
        assert (sample("published_total"), sample("checkpoint"), sample("hole_at")) == (10, 10, 0)
        families = {m.name for m in registry.collect()}
        assert {"mmgen_events_relay_errors", "mmgen_events_relay_republished"} <= families
        assert relay.status.published == 10 and relay.status.hole_at is None
    finally:
        await relay.close()
