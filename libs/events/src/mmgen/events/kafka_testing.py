"""Helpers for tests that check what reached Kafka: read a topic raw, poll with a deadline.

Shipped with the kernel so every service's integration tests read topics the same way.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


async def read_all(
    bootstrap: str, topic: str, *, expect: int, timeout_s: float = 30.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of `topic` from offset 0 (no group), polling until `expect` arrived."""
    partitions = await _partitions(bootstrap, topic, timeout_s)
    if not partitions:
        return []
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records: list[ConsumerRecord[bytes, bytes]] = []
        while len(records) < expect and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
            for msgs in batch.values():
                records.extend(msgs)
        return records
    finally:
        await consumer.stop()


async def _partitions(bootstrap: str, topic: str, timeout_s: float) -> list[int]:
    """Partition ids of `topic`, asked by name (a broker may leave auto-created topics out of
    its all-topics listing)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            described = await admin.describe_topics([topic])
            ids = [p["partition"] for d in described for p in d.get("partitions") or []]
            if ids or asyncio.get_running_loop().time() > deadline:
                return sorted(ids)
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


async def wait_until(predicate: Any, timeout_s: float = 30.0, what: str = "condition") -> None:
    """Poll an async or sync predicate until true, failing the test at the deadline."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
