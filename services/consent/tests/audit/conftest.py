"""Fixtures of the audit log's tests: a store on the test's own database, event factories,
polling, and the offsets a consumer group has committed."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import RecordMetadata

from mmgen.auditlog.entry import AuditEntry, chain_hash, entry_bytes
from mmgen.auditlog.merkle import TreeAppender
from mmgen.consent.audit.store import MongoAuditStore, entry_text, page_of, tile_of
from mmgen.events.envelope import Actor, Envelope, Resource


@pytest.fixture
async def store(mongo_db: Any) -> MongoAuditStore:
    s = MongoAuditStore(mongo_db)
    await s.ensure_indexes()
    return s


def make_item(producer: str = "identity", producer_seq: int = 1, **over: Any) -> dict[str, Any]:
    """Entry fields as the projector makes them from an envelope."""
    item: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "producer": producer,
        "producer_seq": producer_seq,
        "event_type": f"{producer}.ThingRead",
        "action": "read",
        "occurred_at": datetime.now(UTC),
        "subject_id": str(uuid.uuid4()),
        "actor_id": str(uuid.uuid4()),
        "actor_role": "staff",
        "purpose": "support",
        "resource": {"type": "thing", "id": str(uuid.uuid4())},
        "categories": ("contact",),
    }
    item.update(over)
    return item


@pytest.fixture
def item() -> Callable[..., dict[str, Any]]:
    return make_item


def make_envelope(producer: str, seq: int, **over: Any) -> Envelope:
    """A stored-and-numbered event as a relay would publish it (personal data never needed)."""
    fields: dict[str, Any] = {
        "event_type": f"{producer}.ThingHappened",
        "schema_version": 1,
        "producer": producer,
        "producer_seq": seq,
        "stream_id": f"thing-{uuid.uuid4().hex[:8]}",
        "stream_version": 1,
        "subject_id": str(uuid.uuid4()),
        "actor": Actor(id=str(uuid.uuid4()), role="client"),
        "purpose": None,
        "action": "update",
        "resource": Resource(type="thing", id=str(uuid.uuid4())),
        "data": {"secret_content": "never in the audit log"},
        "categories": ("contact",),
    }
    fields.update(over)
    return Envelope(**fields)


@pytest.fixture
def envelope() -> Callable[..., Envelope]:
    return make_envelope


async def eventually(
    check: Callable[[], Any], timeout_s: float = 20.0, interval: float = 0.1
) -> Any:
    """Poll an async or sync `check` until it returns a truthy value (or fail at the deadline)."""
    import asyncio
    import inspect

    deadline = asyncio.get_running_loop().time() + timeout_s
    last: Any = None
    while True:
        last = check()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s (last: {last!r})")
        await asyncio.sleep(interval)


Ends = dict[TopicPartition, int]
"""Per partition, the offset just past the last record sent there."""


class GroupOffsets:
    """What a consumer group has committed, read by a consumer that never subscribes and so
    never joins the group.

    A consumer that commits a record only once its effect is stored (the audit projector does)
    has, once its committed offsets reach `ends`, done all it will do with those records: the
    point after which a test may state what did NOT happen.
    """

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    @staticmethod
    def ends_of(sent: Iterable[RecordMetadata]) -> Ends:
        """The `Ends` of records as the producer acknowledged them.

        From the producer, not from the broker's end offsets: the local broker (Tansu) answers
        ListOffsets(latest) with one past the FIRST record of a partition's last batch.
        """
        ends: Ends = {}
        for record in sent:
            tp = TopicPartition(record.topic, record.partition)
            ends[tp] = max(ends.get(tp, 0), record.offset + 1)
        return ends

    async def committed(self, group_id: str, partitions: Iterable[TopicPartition]) -> Ends:
        """The group's committed offset of each partition (0 where none)."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=group_id, enable_auto_commit=False
        )
        await consumer.start()
        try:
            return {tp: (await consumer.committed(tp)) or 0 for tp in partitions}
        finally:
            await consumer.stop()

    async def wait_past(self, group_id: str, ends: Ends, timeout_s: float = 60.0) -> None:
        """Until `group_id` has committed every partition of `ends` at least that far."""

        async def past() -> bool:
            got = await self.committed(group_id, ends)
            return all(got[tp] >= end for tp, end in ends.items())

        await eventually(past, timeout_s=timeout_s)


@pytest.fixture
def group_offsets(kafka_bootstrap: str) -> GroupOffsets:
    return GroupOffsets(kafka_bootstrap)


@pytest.fixture
def audit_settings(kafka_bootstrap: str, topic_prefix: str) -> Any:
    """The settings fields `build_audit` reads (the service passes its ConsentSettings)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix,
        audit_origin="test.local/audit",
        audit_checkpoint_every_entries=10,
        audit_checkpoint_every_seconds=1.0,
        audit_gap_repair_delay_seconds=1.0,
        audit_batch_max=500,
        audit_consumer_group=f"{topic_prefix}audit",
        topic_partitions=4,
        consumer_session_timeout_ms=2000,
        consumer_heartbeat_interval_ms=500,
    )


@pytest.fixture
async def audit(audit_settings: Any, mongo_db: Any) -> Any:
    """A started audit component (projector, checkpoints, audit.log publisher)."""
    from prometheus_client import CollectorRegistry

    from mmgen.consent.audit import build_audit

    component = build_audit(
        audit_settings, mongo_db, registry=CollectorRegistry(), metadata_max_age_ms=500
    )
    await component.start()
    try:
        yield component
    finally:
        await component.stop()


class LogEditor:
    """Changes stored entries the way someone with database access would (tamper tests)."""

    def __init__(self, store: MongoAuditStore) -> None:
        self.store = store

    async def set(self, seq: int, name: str, value: Any) -> None:
        """Overwrite element `seq` of the page column `name` (`e`, `subject_id`, ...)."""
        page, position = page_of(seq)
        path = f"{name}.{position}"
        updated = await self.store.pages.update_one({"_id": page}, {"$set": {path: value}})
        assert updated.matched_count == 1

    async def rewrite_history(self, component: Any, from_seq: int) -> None:
        """A dishonest server: change entry `from_seq`, recompute every later hash and Merkle
        node, forget the signed heads and sign a new one (a valid chain, a valid signature)."""
        store = component.store
        head = await store.head()
        docs = [d async for d in store.iter_documents(0, head.size, with_nodes=True)]
        appender = TreeAppender(await store.frontier(from_seq))
        prev = bytes.fromhex(json.loads(docs[from_seq - 1]["e"])["hash"]) if from_seq else bytes(32)
        for doc in docs[from_seq:]:
            e = json.loads(doc["e"])
            if doc["_id"] == from_seq:
                e["purpose"] = "security"
            e["prev_hash"] = prev.hex()
            e["hash"] = chain_hash(prev, entry_bytes(e)).hex()
            entry = AuditEntry.from_json(e)
            prev = entry.hash
            await self.set(doc["_id"], "e", entry_text(entry))
            for node in appender.append(entry.leaf_hash):
                await self.set_node(node.level, node.index, node.hash)
        await store.head_coll.update_one(
            {"_id": "head"},
            {"$set": {"last_hash": prev.hex(), "frontier": appender.frontier.to_json()}},
        )
        await store.checkpoints.delete_many({})
        await component.checkpointer.sign_now()

    async def set_node(self, level: int, index: int, value: bytes) -> None:
        """Overwrite the stored hash of Merkle node `(level, index)` in its tile."""
        key, position = tile_of(level, index)
        updated = await self.store.tiles.update_one(
            {"_id": key}, {"$set": {f"h.{position}": value}}
        )
        assert updated.matched_count == 1

    async def remove(self, seq: int) -> None:
        """Delete one entry from its page: the entries after it in the page shift down."""
        page, position = page_of(seq)
        doc = await self.store.pages.find_one({"_id": page})
        assert doc is not None
        for column in doc.values():
            if isinstance(column, list):
                del column[position]
        doc["k"] -= 1
        await self.store.pages.replace_one({"_id": page}, doc)

    async def remove_page(self, seq: int) -> None:
        """Delete the whole page document holding `seq`."""
        deleted = await self.store.pages.delete_one({"_id": page_of(seq)[0]})
        assert deleted.deleted_count == 1


@pytest.fixture
def edit_log(mongo_db: Any) -> LogEditor:
    return LogEditor(MongoAuditStore(mongo_db))


@pytest.fixture(name="eventually")
def eventually_fixture() -> Callable[..., Any]:
    return eventually
