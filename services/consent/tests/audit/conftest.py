"""Fixtures of the audit log's tests: a store on the test's own database, event factories."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from mmgen.consent.audit.store import MongoAuditStore
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
