"""When the audit feed asks consent to publish `audit.log` entries again, and for which seqs: after
waiting at one hole for the set time, for the hole only (up to the next staged entry, or a
bounded window), again at doubling intervals with a ceiling, never in a tight loop."""

from __future__ import annotations

import itertools

from prometheus_client import CollectorRegistry

from mmgen.events.republish import AUDIT_LOG_PRODUCER, RepublishRequest
from mmgen.retention.adapters.audit_repair import AuditHoleRepair, RepairMetrics


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class InMemoryStaged:
    """The inbox's staged seqs, as `lowest_staged_above` reads them."""

    def __init__(self, *seqs: int) -> None:
        self.seqs = set(seqs)

    async def lowest_above(self, seq: int) -> int | None:
        return min((s for s in self.seqs if s > seq), default=None)


class Sent:
    def __init__(self, fail: int = 0) -> None:
        self.requests: list[RepublishRequest] = []
        self.fail = fail

    async def __call__(self, request: RepublishRequest) -> None:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("broker away")
        self.requests.append(request)

    @property
    def ranges(self) -> list[tuple[int, int]]:
        return [(r.from_seq, r.to_seq) for r in self.requests]


def repair(sent: Sent, staged: InMemoryStaged, clock: Clock, **kwargs: object) -> AuditHoleRepair:
    return AuditHoleRepair(sent, staged.lowest_above, after_s=10.0, clock=clock, **kwargs)  # type: ignore[arg-type]


async def test_asks_for_the_hole_only_once_it_has_waited_the_set_time() -> None:
    sent, clock, registry = Sent(), Clock(), CollectorRegistry()
    hole = AuditHoleRepair(
        sent,
        InMemoryStaged(8, 9, 12).lowest_above,
        after_s=10.0,
        clock=clock,
        metrics=RepairMetrics(registry),
    )
    assert await hole.check(5) is None  # first seen
    clock.now += 9.9
    assert await hole.check(5) is None
    assert "repair asked in 0 s" in hole.describe()
    clock.now += 0.1
    request = await hole.check(5)
    assert request is not None
    assert (request.producer, request.from_seq, request.to_seq) == (AUDIT_LOG_PRODUCER, 5, 7)
    assert request.requested_by == "retention"
    assert sent.ranges == [(5, 7)]
    assert hole.describe() == "for 10 s, repair asked 1x (last for 5..7)"
    assert registry.get_sample_value("mmgen_retention_audit_feed_repair_requests_total") == 1


async def test_a_hole_that_closes_or_moves_starts_its_wait_again() -> None:
    sent, clock = Sent(), Clock()
    hole = repair(sent, InMemoryStaged(9), clock)
    await hole.check(5)
    clock.now += 8
    assert await hole.check(None) is None  # the entry arrived
    assert hole.describe() == ""
    await hole.check(6)  # the next one is missing: a new wait
    clock.now += 8
    assert await hole.check(6) is None
    clock.now += 2
    assert await hole.check(6) is not None
    assert sent.ranges == [(6, 8)]


async def test_nothing_staged_above_asks_a_bounded_window_and_so_does_a_far_next_entry() -> None:
    sent, clock = Sent(), Clock()
    hole = repair(sent, InMemoryStaged(), clock, window=100)
    await hole.check(40)
    clock.now += 10
    await hole.check(40)
    far = repair(sent, InMemoryStaged(5000), clock, window=100)
    await far.check(40)
    clock.now += 10
    await far.check(40)
    assert sent.ranges == [(40, 139), (40, 139)]


async def test_a_missing_seq_0_is_asked_for_from_0() -> None:
    """The log numbers from 0 (a service's events from 1): the first entry can be the lost one."""
    sent, clock = Sent(), Clock()
    hole = repair(sent, InMemoryStaged(1, 2), clock)
    await hole.check(0)
    clock.now += 10
    request = await hole.check(0)
    assert request is not None and (request.from_seq, request.to_seq) == (0, 0)
    back = RepublishRequest.from_wire(request.to_wire())
    assert (back.producer, back.from_seq, back.to_seq) == (AUDIT_LOG_PRODUCER, 0, 0)


async def test_asks_again_while_the_hole_stays_at_doubling_intervals_up_to_a_ceiling() -> None:
    sent, clock = Sent(), Clock()
    hole = repair(sent, InMemoryStaged(6), clock, max_interval_s=60.0)
    asked_at: list[float] = []
    start = clock.now
    await hole.check(5)
    while clock.now < start + 300:  # checked every 0.5 s for five minutes
        clock.now += 0.5
        if await hole.check(5) is not None:
            asked_at.append(clock.now - start)
    assert asked_at[:5] == [10, 30, 70, 130, 190]  # waits of 10, 20, 40, then 60, 60, ...
    gaps = [b - a for a, b in itertools.pairwise(asked_at)]
    assert max(gaps) == 60 and min(gaps) == 20
    assert len(sent.requests) == len(asked_at) == 6
    assert sent.ranges == [(5, 5)] * 6
    assert hole.describe().startswith("for 300 s, repair asked 6x")


async def test_a_failed_request_is_not_counted_and_is_asked_again_at_the_next_interval() -> None:
    sent, clock, registry = Sent(fail=1), Clock(), CollectorRegistry()
    hole = AuditHoleRepair(
        sent,
        InMemoryStaged(9).lowest_above,
        after_s=10.0,
        clock=clock,
        metrics=RepairMetrics(registry),
    )
    await hole.check(5)
    clock.now += 10
    assert await hole.check(5) is None
    assert "last request failed: ConnectionError('broker away')" in hole.describe()
    assert registry.get_sample_value("mmgen_retention_audit_feed_repair_requests_total") == 0
    clock.now += 10
    assert await hole.check(5) is None  # not yet: the next interval is twice as long
    clock.now += 10
    assert await hole.check(5) is not None
    assert sent.ranges == [(5, 8)] and hole.last_error is None
    assert registry.get_sample_value("mmgen_retention_audit_feed_repair_requests_total") == 1
