"""The relay creates its topic with a fixed partition count, keeps publishing across a restart
of the memory-only local broker once the topic is created again, and `republish` restores
what the restart lost."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import CollectorRegistry

from mmgen.events.kafka_testing import read_all, wait_until
from mmgen.events.relay import Relay, RelaySettings
from mmgen.events.store import InMemoryEventStore
from mmgen.events.topics import ensure_topics
from mmgen.localstack.components import start_broker
from mmgen.localstack.ports import free_port
from mmgen.localstack.processes import ManagedProcess


async def partition_count(bootstrap: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
        return len(described[0].get("partitions") or [])
    finally:
        await admin.close()


async def test_relay_keeps_publishing_across_a_broker_restart(
    mongo_db: Any, tmp_path: Path, make_envelope: Any
) -> None:
    port = free_port()
    broker = start_broker("127.0.0.1", port, tmp_path / "broker.log")
    bootstrap = broker.address
    producer = f"restart{uuid.uuid4().hex[:6]}"
    topic = f"{producer}.events"
    store = InMemoryEventStore(producer)
    relay = Relay(
        store,
        mongo_db,
        bootstrap,
        topic,
        partitions=3,
        settings=RelaySettings(
            idle_wait_s=0.2, lease_ttl_s=5.0, error_backoff_s=0.2, max_error_backoff_s=0.5
        ),
        registry=CollectorRegistry(),
    )
    restarted: ManagedProcess | None = None
    task = asyncio.create_task(relay.run())
    try:
        for _ in range(5):
            e = make_envelope(producer=producer)
            await store.append(e.stream_id, 0, [e])
        await wait_until(lambda: relay.status.checkpoint == 5, what="first events published")
        assert await partition_count(bootstrap, topic) == 3

        broker.stop(kill=True)  # memory only: every topic and message is gone
        # On the port the killed one used (its connections in TIME_WAIT do not keep it).
        restarted = await asyncio.to_thread(
            start_broker, "127.0.0.1", port, tmp_path / "broker2.log"
        )
        # What a service does when its broker comes back (INFRA.md): create its topics again.
        # The relay's reconnecting producer may auto-create it first, with the broker's own
        # count (INFRA.md): what this test holds is that publishing goes on either way.
        counts = await ensure_topics(bootstrap, [topic], partitions=3, check_partitions=False)
        assert counts[topic] >= 3
        for _ in range(5):
            e = make_envelope(producer=producer)
            await store.append(e.stream_id, 0, [e])
        await wait_until(
            lambda: relay.status.checkpoint == 10,
            timeout_s=60,
            what="events after the restart published",
        )
        records = await read_all(bootstrap, topic, expect=5)
        assert sorted(json.loads(r.value)["producer_seq"] for r in records) == [6, 7, 8, 9, 10]
        # 1..5 are gone with the broker: the audit projector's gap repair asks for them
        # (`republish`), and the relay can send them again.
        result = await relay.republish(1, 5)
        assert (result.published, result.missing) == (5, [])
        records = await read_all(bootstrap, topic, expect=10)
        assert sorted(json.loads(r.value)["producer_seq"] for r in records) == list(range(1, 11))
    finally:
        await relay.stop()
        await task
        if restarted is None:
            broker.stop()
        else:
            restarted.stop(kill=True)  # memory only: nothing to flush
