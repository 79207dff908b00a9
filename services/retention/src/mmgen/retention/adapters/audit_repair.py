"""Repair of the audit feed: a missing `audit.log` entry asked for again rather than waited for.

The feed stops at a missing `seq` (an entry still on its way in another partition). An entry the
broker lost — the local broker drops acked writes after it restarts empty, any broker can lose a
message — never comes, and the feed would wait at it for good: no erasure acknowledged again.
So once the feed has waited at the same seq for `after_s`, it asks consent, which keeps the log,
to publish the entries again: a `RepublishRequest` naming the reserved producer
`AUDIT_LOG_PRODUCER` on `<prefix>audit.republish` (the topic services' gaps are repaired
through), from the missing seq up to just below the lowest seq already staged above it (only
the hole), or a bounded window when nothing above it is staged. Consent's audit component
serves it from its store; the copies are staged like any entry (idempotent on `seq`).

While the hole stays it asks again, each time after twice the previous wait, at most every
`max_interval_s` (a lost request, or consent away, is retried; never a tight loop).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter

from mmgen.events.republish import AUDIT_LOG_PRODUCER, RepublishRequest

log = logging.getLogger(__name__)

REPAIR_WINDOW = 1000
"""Most seqs one request asks for (consent serves at most as many per request)."""
MAX_INTERVAL_S = 60.0
"""Longest wait between two requests for the same hole."""

Send = Callable[[RepublishRequest], Awaitable[None]]
LowestAbove = Callable[[int], Awaitable[int | None]]


class RepairMetrics:
    """`mmgen_retention_audit_feed_repair_requests_total`: republish requests the feed sent."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "audit_feed_repair_requests",
            "Requests to consent to publish audit.log entries again (the feed waited at a hole)",
            namespace="mmgen",
            subsystem="retention",
            registry=registry,
        )


@dataclass
class HoleState:
    """The hole the feed waits at, and what was asked for it."""

    seq: int
    since: float
    next_ask_at: float
    interval: float
    requests: int = 0
    last_range: tuple[int, int] | None = None


class AuditHoleRepair:
    """Decides when and what to ask for; `check` is called with the feed's hole, repeatedly."""

    def __init__(
        self,
        send: Send,
        lowest_staged_above: LowestAbove,
        *,
        after_s: float,
        metrics: RepairMetrics | None = None,
        max_interval_s: float = MAX_INTERVAL_S,
        window: int = REPAIR_WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if after_s <= 0 or window < 1:
            raise ValueError("after_s must be positive and window at least 1")
        self.send = send
        self.lowest_staged_above = lowest_staged_above
        self.after_s = after_s
        self.metrics = metrics
        self.max_interval_s = max(max_interval_s, after_s)
        self.window = window
        self.clock = clock
        self.hole: HoleState | None = None
        self.requests = 0
        """Requests sent since start (all holes)."""
        self.last_error: str | None = None

    async def check(self, hole_at: int | None) -> RepublishRequest | None:
        """Note the feed's hole (None: none); ask for it when it has waited long enough.

        Returns the request sent, if one was. A failed send is logged and asked again at the
        next interval (the feed goes on waiting either way).
        """
        now = self.clock()
        if hole_at is None:
            self.hole = None
            return None
        if self.hole is None or self.hole.seq != hole_at:
            self.hole = HoleState(
                seq=hole_at, since=now, next_ask_at=now + self.after_s, interval=self.after_s
            )
            return None
        hole = self.hole
        if now < hole.next_ask_at:
            return None
        hole.interval = min(hole.interval * 2, self.max_interval_s)
        hole.next_ask_at = now + hole.interval
        request = RepublishRequest(
            AUDIT_LOG_PRODUCER,
            hole_at,
            await self._end_of(hole_at),
            requested_by="retention",
        )
        try:
            await self.send(request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # broker away: the next interval asks again
            self.last_error = repr(exc)
            log.warning("audit feed: asking for seq %d again failed", hole_at, exc_info=True)
            return None
        self.last_error = None
        hole.requests += 1
        hole.last_range = (request.from_seq, request.to_seq)
        self.requests += 1
        if self.metrics is not None:
            self.metrics.requests.inc()
        log.warning(
            "audit feed waited %.0f s at seq %d: asked consent for %d..%d again",
            now - hole.since,
            hole_at,
            request.from_seq,
            request.to_seq,
        )
        return request

    async def _end_of(self, hole_at: int) -> int:
        """Just below the lowest seq staged above the hole, within `window` seqs of it."""
        bound = hole_at + self.window - 1
        above = await self.lowest_staged_above(hole_at)
        return bound if above is None else min(bound, above - 1)

    def describe(self) -> str:
        """For readiness: how long the feed waits and whether the entry was asked for."""
        hole = self.hole
        if hole is None:
            return ""
        now = self.clock()
        waited = f"for {now - hole.since:.0f} s"
        if hole.last_range is None:
            asked = f"repair asked in {max(0.0, hole.next_ask_at - now):.0f} s"
        else:
            first, last = hole.last_range
            asked = f"repair asked {hole.requests}x (last for {first}..{last})"
        failed = f"; last request failed: {self.last_error}" if self.last_error else ""
        return f"{waited}, {asked}{failed}"

    async def run(self, hole_of: Callable[[], int | None], poll_s: float) -> None:
        """Check the feed's hole every `poll_s` until cancelled (errors logged, never fatal)."""
        while True:
            try:
                await self.check(hole_of())
            except asyncio.CancelledError:
                raise
            except Exception:  # the inbox unreadable for a moment: check again next time
                log.exception("audit feed: hole repair check failed")
            await asyncio.sleep(poll_s)


__all__ = ["MAX_INTERVAL_S", "REPAIR_WINDOW", "AuditHoleRepair", "RepairMetrics"]
