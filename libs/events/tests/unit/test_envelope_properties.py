"""Property tests: any envelope survives the Kafka JSON form and a real BSON encode/decode."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import bson
from bson.codec_options import CodecOptions
from hypothesis import given, settings
from hypothesis import strategies as st

from mmgen.events.envelope import ACTIONS, Actor, Envelope, PiiBlob, Resource

text = st.text(min_size=1, max_size=20)
# Keys as EventData models produce them (field names); BSON refuses NUL, "$..." and dots.
key = st.from_regex(r"\A[a-z_][a-z0-9_]{0,8}\Z")
json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(key, inner, max_size=4),
    ),
    max_leaves=12,
)  # fmt: skip

envelopes = st.builds(
    Envelope,
    event_type=st.sampled_from(["identity.UserRegistered", "projects.FileAdded"]),
    schema_version=st.integers(min_value=1, max_value=9),
    producer=text,
    producer_seq=st.one_of(st.none(), st.integers(min_value=1, max_value=2**62)),
    stream_id=text,
    stream_version=st.integers(min_value=1, max_value=2**40),
    subject_id=st.one_of(st.none(), text),
    actor=st.one_of(st.none(), st.builds(Actor, id=text, role=text)),
    purpose=st.one_of(st.none(), text),
    action=st.sampled_from(ACTIONS),
    resource=st.builds(Resource, type=text, id=text),
    occurred_at=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    data=st.dictionaries(key, json_value, max_size=5),
    pii=st.one_of(
        st.none(),
        st.builds(
            PiiBlob,
            owner=st.from_regex(r"\A(subject|project):[a-z0-9-]{1,12}\Z"),
            key_id=text,
            nonce=st.binary(min_size=12, max_size=12),
            ciphertext=st.binary(max_size=64),
        ),
    ),
    categories=st.lists(st.sampled_from(["contact", "project", "usage"]), max_size=3).map(tuple),
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(envelopes)
def test_wire_and_bson_round_trips(env: Envelope) -> None:
    assert Envelope.from_wire(env.to_wire()) == env
    raw = bson.encode(env.to_document())
    decoded: dict[str, Any] = bson.decode(raw, CodecOptions(tz_aware=False))
    assert Envelope.from_document(decoded) == env
