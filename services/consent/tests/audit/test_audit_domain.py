"""Unit tests of the audit domain: producer continuity ranges, node placement, recorded_at."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from mmgen.auditlog.merkle import TreeAppender
from mmgen.consent.audit.domain import ProducerProgress, monotonic_recorded_at, node_holder


def test_in_order_arrival_keeps_no_ranges() -> None:
    p = ProducerProgress("identity")
    p.add([1, 2, 3])
    p.add([4])
    assert (p.contiguous, p.ranges, p.holes()) == (4, [], [])


def test_hole_is_named_exactly_and_closes_when_filled() -> None:
    p = ProducerProgress("identity")
    p.add([1, 2, 5, 6, 9])
    assert p.contiguous == 2
    assert p.holes() == [(3, 4), (7, 8)]
    assert p.missing == 4 and p.highest == 9
    p.add([3, 4])
    assert p.contiguous == 6 and p.holes() == [(7, 8)]
    p.add([8, 7, 7, 2])
    assert (p.contiguous, p.ranges) == (9, [])


@given(st.lists(st.integers(min_value=1, max_value=60), max_size=80))
def test_progress_matches_a_set(seqs: list[int]) -> None:
    p = ProducerProgress("x")
    chunks = [seqs[i : i + 7] for i in range(0, len(seqs), 7)]
    for chunk in chunks:
        p.add(chunk)
        back = ProducerProgress.from_document("x", p.to_document())
        assert back == p
    held = set(seqs)
    contiguous = 0
    while contiguous + 1 in held:
        contiguous += 1
    assert p.contiguous == contiguous
    missing = {n for a, b in p.holes() for n in range(a, b + 1)}
    top = max(held, default=0)
    assert missing == set(range(1, top + 1)) - held


def test_every_node_lives_in_the_entry_that_completed_it() -> None:
    appender = TreeAppender()
    where: dict[tuple[int, int], tuple[int, int]] = {}
    for seq in range(300):
        nodes = appender.append(random.randbytes(32))
        for position, node in enumerate(nodes):
            assert node.level == position
            where[(node.level, node.index)] = (seq, position)
    for (level, index), (seq, position) in where.items():
        assert node_holder(level, index) == seq
        assert position == level


def test_recorded_at_never_goes_back() -> None:
    now = datetime(2026, 11, 25, 8, 0, 0, 123456, tzinfo=UTC)
    assert monotonic_recorded_at(now, None) == "2026-11-25T08:00:00.123Z"
    later = "2026-11-25T08:00:05.000Z"
    assert monotonic_recorded_at(now, later) == later
    assert monotonic_recorded_at(now + timedelta(seconds=10), later) == "2026-11-25T08:00:10.123Z"


def test_spliced_entry_text_is_the_canonical_text() -> None:
    import uuid

    from mmgen.auditlog.entry import ChainBuilder
    from mmgen.consent.audit.store import entry_text, text_and_leaf

    builder = ChainBuilder()
    for event_type in ("x.Y", 'x.",\\"occurred_at\\":'):
        entry = builder.append(
            event_id=str(uuid.uuid4()), producer="p", producer_seq=1, event_type=event_type,
            action="read", occurred_at=datetime.now(UTC), recorded_at=datetime.now(UTC),
            actor_role=',"occurred_at":"', categories=("b", "a"),
        )  # fmt: skip
        text, leaf = text_and_leaf(entry)
        assert text == entry_text(entry)
        assert leaf == entry.leaf_hash


def _progress_doc(announced: int, requests_open: int) -> dict[str, object]:
    return {
        "contiguous": 10,
        "ranges": [],
        "announced": announced,
        "repair_requests_open": requests_open,
    }


def test_a_repaired_tail_hole_counts_as_a_closed_gap() -> None:
    """Events lost after a producer's last one received never show as a range (nothing above
    the hole is held); filling them after a republish request still closes a gap."""
    from mmgen.consent.audit.store import progress_updates

    now = datetime.now(UTC)
    before = {"identity": ProducerProgress.from_document("identity", _progress_doc(14, 1))}
    _, _, closed = progress_updates({"identity": [11, 12]}, before, now)
    assert closed == [], "two of the four missing events do not close the tail hole"
    _, updates, closed = progress_updates({"identity": [11, 12, 13, 14]}, before, now)
    assert closed == ["identity"]
    assert updates[0][1]["repair_requests_open"] == 0
    assert "announced" not in updates[0][1], "the announced head is kept by its own update"


def test_events_simply_arriving_after_their_announcement_close_nothing() -> None:
    """The head announcement may overtake the events it announces; with no repair asked for,
    their arrival is ordinary progress, not a repaired gap."""
    from mmgen.consent.audit.store import progress_updates

    now = datetime.now(UTC)
    before = {"identity": ProducerProgress.from_document("identity", _progress_doc(14, 0))}
    _, _, closed = progress_updates({"identity": [11, 12, 13, 14]}, before, now)
    assert closed == []
