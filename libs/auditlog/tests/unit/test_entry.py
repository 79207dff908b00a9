"""Audit entry format: exact bytes, hash chain, canonical member forms, strict parsing."""

from __future__ import annotations

import copy
import hashlib
import itertools
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmgen.auditlog import entry as E
from mmgen.auditlog.errors import EntryMalformedError
from mmgen.auditlog.jcs import canonicalize
from mmgen.auditlog.merkle import hash_leaf

T0 = datetime(2026, 11, 25, 8, 0, 0, 123999, tzinfo=UTC)

GOLDEN_BYTES = (
    b'{"action":"read","actor_id":"0195f3a0-0000-7000-8000-000000000002","actor_role":"staff",'
    b'"categories":["contact","project"],"event_id":"0195f3a0-0000-7000-8000-000000000001",'
    b'"event_type":"projects.RequirementsRead","occurred_at":"2026-11-25T08:00:00.123Z",'
    b'"prev_hash":"0000000000000000000000000000000000000000000000000000000000000000",'
    b'"producer":"projects","producer_seq":41,"purpose":"project_execution",'
    b'"recorded_at":"2026-11-25T09:00:00.123Z",'
    b'"resource":{"id":"0195f3a0-0000-7000-8000-000000000004","type":"project"},"seq":0,'
    b'"subject_id":"0195f3a0-0000-7000-8000-000000000003"}'
)


def _fields(**over: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "event_id": uuid.UUID("0195f3a0-0000-7000-8000-000000000001"),
        "producer": "projects",
        "producer_seq": 41,
        "event_type": "projects.RequirementsRead",
        "action": "read",
        "subject_id": "0195f3a0-0000-7000-8000-000000000003",
        "actor_id": "0195F3A0-0000-7000-8000-000000000002".lower(),
        "actor_role": "staff",
        "purpose": "project_execution",
        "resource": {"type": "project", "id": "0195f3a0-0000-7000-8000-000000000004"},
        "categories": ["project", "contact", "project"],
        "occurred_at": T0,
        "recorded_at": "2026-11-25T10:00:00.123456+01:00",
    }
    fields.update(over)
    return fields


def test_golden_entry_bytes_and_hashes() -> None:
    entry = E.ChainBuilder().append(**_fields())
    assert entry.entry_bytes == GOLDEN_BYTES
    assert E.entry_bytes(entry.to_json()) == GOLDEN_BYTES
    assert entry.hash == hashlib.sha256(bytes(32) + GOLDEN_BYTES).digest()
    assert entry.leaf_hash == hashlib.sha256(b"\x00" + GOLDEN_BYTES).digest()
    assert E.leaf_hash(GOLDEN_BYTES) == hash_leaf(GOLDEN_BYTES)
    assert entry.to_json()["hash"] == entry.hash.hex()
    # pinned values, computed once with plain hashlib over GOLDEN_BYTES (see README example)
    assert entry.hash.hex() == "2a037737e33ed412a383c68428ed90bebae197eab69fc87db6f12656572d6f6d"
    assert entry.leaf_hash.hex() == (
        "992d1d56a09e8d42016dc6376961caecfaca248b7590a934d9e0efcdf8b683f5"
    )


def test_chain_links_each_entry_to_the_previous_one() -> None:
    builder = E.ChainBuilder()
    entries = [builder.append(**_fields(producer_seq=i)) for i in range(5)]
    assert entries[0].prev_hash == E.ZERO_HASH
    for prev, cur in itertools.pairwise(entries):
        assert cur.seq == prev.seq + 1
        assert cur.prev_hash == prev.hash
        assert cur.hash == E.chain_hash(prev.hash, cur.entry_bytes)
    resumed = E.ChainBuilder.after(entries[2])
    assert resumed.append(**_fields(producer_seq=3)) == entries[3]
    assert E.ChainBuilder.after(None).next_seq == 0


def test_builder_refuses_to_be_told_seq_or_prev_hash() -> None:
    with pytest.raises(TypeError):
        E.ChainBuilder().append(seq=3, **_fields())
    with pytest.raises(EntryMalformedError):
        E.ChainBuilder(0, b"\x01" * 32)


def test_json_round_trip() -> None:
    entry = E.ChainBuilder(7, b"\x11" * 32).append(**_fields(resource=None, purpose=None))
    assert E.AuditEntry.from_json(entry.to_json()) == entry
    assert entry.to_json()["resource"] is None


def test_entry_bytes_equal_generic_jcs() -> None:
    entry = E.ChainBuilder().append(**_fields())
    assert entry.entry_bytes == canonicalize(entry.unhashed_json())


_scalar = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)


@given(
    seq=st.integers(0, E.MAX_UINT64),
    producer_seq=st.integers(0, E.MAX_UINT64),
    strings=st.lists(_scalar, min_size=9, max_size=9),
    optional=st.lists(st.booleans(), min_size=5, max_size=5),
    categories=st.lists(_scalar, max_size=5),
    micros=st.integers(0, 10**15),
)
def test_fast_serialiser_matches_jcs_on_random_entries(
    seq: int,
    producer_seq: int,
    strings: list[str],
    optional: list[bool],
    categories: list[str],
    micros: int,
) -> None:
    when = datetime(1990, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    entry = E.make_entry(
        seq=seq,
        prev_hash=hashlib.sha256(strings[0].encode()).digest(),
        event_id=strings[0],
        producer=strings[1],
        producer_seq=producer_seq,
        event_type=strings[2],
        action="share",
        subject_id=strings[3] if optional[0] else None,
        actor_id=strings[4] if optional[1] else None,
        actor_role=strings[5] if optional[2] else None,
        purpose=strings[6] if optional[3] else None,
        resource={"type": strings[7], "id": strings[8]} if optional[4] else None,
        categories=categories,
        occurred_at=when,
        recorded_at=when,
    )
    obj = entry.unhashed_json()
    assert entry.entry_bytes == canonicalize(obj)
    assert E.AuditEntry.from_json(entry.to_json()) == entry


@pytest.mark.parametrize(
    ("value", "encoded"),
    [(0, 0), (2**53 - 1, 2**53 - 1), (2**53, "9007199254740992"), (2**64 - 1, str(2**64 - 1))],
)
def test_uint_encoding(value: int, encoded: int | str) -> None:
    assert E.encode_uint(value) == encoded
    assert E.decode_uint(encoded) == value


@pytest.mark.parametrize(
    "bad", ["5", 2**53, "09007199254740993", True, -1, str(2**64), 1.0, None, "9e15"]
)
def test_uint_non_canonical_forms_are_refused(bad: object) -> None:
    with pytest.raises(EntryMalformedError):
        E.decode_uint(bad)


def test_big_seq_is_a_string_in_bytes() -> None:
    entry = E.ChainBuilder(2**53, b"\x22" * 32).append(**_fields(producer_seq=2**60))
    assert b'"seq":"9007199254740992"' in entry.entry_bytes
    assert b'"producer_seq":"1152921504606846976"' in entry.entry_bytes
    assert E.AuditEntry.from_json(entry.to_json()) == entry


def test_timestamps_are_utc_milliseconds_truncated() -> None:
    cet = timezone(timedelta(hours=1))
    assert E.format_timestamp(datetime(2026, 1, 2, 3, 4, 5, 999999, tzinfo=cet)) == (
        "2026-01-02T02:04:05.999Z"
    )
    assert E.format_timestamp("2026-01-02T03:04:05Z") == "2026-01-02T03:04:05.000Z"
    assert E.parse_timestamp("2026-01-02T03:04:05.006Z") == datetime(
        2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC
    )
    with pytest.raises(EntryMalformedError, match="offset"):
        E.format_timestamp(datetime(2026, 1, 2))  # naive: zone unknown
    with pytest.raises(EntryMalformedError):
        E.format_timestamp("yesterday")


def _valid_json() -> dict[str, Any]:
    return E.ChainBuilder().append(**_fields()).to_json()


_MUTATIONS: list[tuple[str, Any]] = [
    ("extra member", lambda o: o.update(extra=1)),
    ("missing member", lambda o: o.pop("purpose")),
    ("uppercase hash", lambda o: o.update(hash=o["hash"].upper())),
    ("short prev_hash", lambda o: o.update(prev_hash="00" * 31)),
    ("seq as string", lambda o: o.update(seq="0")),
    ("negative producer_seq", lambda o: o.update(producer_seq=-1)),
    ("unsorted categories", lambda o: o.update(categories=["project", "contact"])),
    ("duplicate categories", lambda o: o.update(categories=["contact", "contact"])),
    ("empty optional string", lambda o: o.update(purpose="")),
    ("unknown action", lambda o: o.update(action="peek")),
    ("resource extra key", lambda o: o["resource"].update(name="x")),
    ("resource not object", lambda o: o.update(resource="project:1")),
    ("timestamp without ms", lambda o: o.update(occurred_at="2026-11-25T08:00:00Z")),
    ("timestamp with offset", lambda o: o.update(occurred_at="2026-11-25T08:00:00.000+00:00")),
    ("impossible date", lambda o: o.update(recorded_at="2026-02-30T08:00:00.000Z")),
    ("lone surrogate", lambda o: o.update(actor_role="\ud800")),
    ("too long string", lambda o: o.update(event_type="x" * (E.MAX_STRING_LENGTH + 1))),
    ("number as event_id", lambda o: o.update(event_id=5)),
    ("bool as seq", lambda o: o.update(seq=False)),
]


@pytest.mark.parametrize(("name", "mutate"), _MUTATIONS, ids=[m[0] for m in _MUTATIONS])
def test_non_canonical_entries_are_refused(name: str, mutate: Any) -> None:
    obj = copy.deepcopy(_valid_json())
    E.AuditEntry.from_json(obj)  # the unmutated entry parses
    mutate(obj)
    with pytest.raises(EntryMalformedError):
        E.AuditEntry.from_json(obj)
    with pytest.raises(EntryMalformedError):
        E.entry_bytes(obj)


def test_entry_bytes_accepts_an_unhashed_mapping() -> None:
    obj = _valid_json()
    del obj["hash"]
    assert E.entry_bytes(obj) == GOLDEN_BYTES


def test_builder_normalises_inputs() -> None:
    entry = E.ChainBuilder().append(**_fields(categories=("b", "a", "b")))
    assert entry.categories == ("a", "b")
    assert entry.event_id == "0195f3a0-0000-7000-8000-000000000001"
    assert entry.recorded_at == "2026-11-25T09:00:00.123Z"
    with pytest.raises(EntryMalformedError):
        E.ChainBuilder().append(**_fields(categories="contact"))
    with pytest.raises(EntryMalformedError):
        E.ChainBuilder().append(**_fields(action="peek"))
