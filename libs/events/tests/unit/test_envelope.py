"""Envelope round-trips (Kafka JSON, Mongo documents) and the UUIDv7 generator."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from mmgen.events.envelope import Actor, Envelope, PiiBlob, Resource
from mmgen.events.errors import EnvelopeInvalidError
from mmgen.events.ids import uuid7, uuid7_time_ms


def make(**overrides: object) -> Envelope:
    fields: dict[str, object] = {
        "event_type": "identity.UserRegistered",
        "schema_version": 1,
        "producer": "identity",
        "stream_id": f"user-{uuid.uuid4().hex}",
        "stream_version": 1,
        "subject_id": str(uuid.uuid4()),
        "actor": Actor(id="u1", role="client"),
        "purpose": "project_execution",
        "action": "create",
        "resource": Resource(type="user", id="u1"),
        "data": {"role": "client", "n": 3},
        "pii": PiiBlob(owner="subject:u1", key_id="k1", nonce=b"\x00" * 12, ciphertext=b"\xff\x01"),
        "categories": ["contact", "business"],
    }
    fields.update(overrides)
    return Envelope(**fields)  # type: ignore[arg-type]


def test_wire_round_trip_uses_base64_and_utc() -> None:
    env = make()
    raw = env.to_wire()
    parsed = json.loads(raw)
    assert parsed["pii"]["ciphertext"] == base64.b64encode(b"\xff\x01").decode()
    assert parsed["occurred_at"].endswith("Z")
    assert parsed["producer_seq"] is None
    assert Envelope.from_wire(raw) == env


def test_document_round_trip_keeps_bytes_and_uses_event_id_as_key() -> None:
    env = make().with_position(42)
    doc = env.to_document()
    assert doc["_id"] == env.event_id
    assert "event_id" not in doc
    assert doc["pii"]["nonce"] == b"\x00" * 12
    assert doc["producer_seq"] == 42
    # BSON hands datetimes back naive (client without tz_aware): still the same instant.
    doc["occurred_at"] = doc["occurred_at"].replace(tzinfo=None)
    assert Envelope.from_document(doc) == env


def test_occurred_at_is_utc_at_millisecond_precision() -> None:
    local = datetime(2026, 1, 2, 3, 4, 5, 678999, tzinfo=timezone(timedelta(hours=2)))
    env = make(occurred_at=local)
    assert env.occurred_at == datetime(2026, 1, 2, 1, 4, 5, 678000, tzinfo=UTC)


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"{}",
        make().to_wire().replace(b'"create"', b'"steal"'),
        make().to_wire().replace(b'"identity.UserRegistered"', b'"bad type"'),
    ],
)
def test_malformed_wire_is_a_clear_error(raw: bytes) -> None:
    with pytest.raises(EnvelopeInvalidError):
        Envelope.from_wire(raw)


def test_owner_and_kafka_key() -> None:
    env = make()
    assert env.owner == "subject:u1"
    assert env.kafka_key() == env.subject_id.encode()  # type: ignore[union-attr]
    assert make(subject_id=None, stream_id="s-1").kafka_key() == b"s-1"
    assert make(pii=None).owner is None


def test_uuid7_is_version_7_monotonic_and_timed() -> None:
    ids = [uuid7() for _ in range(5000)]
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in ids)
    assert ids == sorted(ids, key=lambda u: u.int)
    assert len(set(ids)) == len(ids)
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    assert abs(uuid7_time_ms(ids[-1]) - now_ms) < 5_000
