"""`StreamWatch` and `StreamSlots` alone (no database): when a stream goes on, waits, ends."""

from __future__ import annotations

import time

import pytest

from mmgen.consent.audit.streaming import AuditStreamLimitError, StreamSlots, StreamWatch
from mmgen.platform.auth import Principal
from mmgen.platform.auth.denylist import InMemorySubjectDenylist
from mmgen.platform.auth.principal import Role


def officer(exp: float | None = None) -> Principal:
    claims = {} if exp is None else {"exp": exp}
    return Principal(subject_id="officer-1", role=Role.compliance, claims=claims)


async def test_a_due_recheck_moves_on_so_waits_never_become_zero() -> None:
    for denylist in (None, InMemorySubjectDenylist()):
        watch = StreamWatch(officer(), denylist, recheck_seconds=5.0)
        watch._next_check = time.monotonic() - 1  # the recheck is due
        assert await watch.may_continue()
        assert watch.wait_bound(1.0) > 0.5  # not a busy loop of zero-second waits


async def test_expiry_and_revocation_end_a_stream() -> None:
    assert not await StreamWatch(officer(time.time() - 1), None, 5.0).may_continue()
    expiring = StreamWatch(officer(time.time() + 0.3), None, 5.0)
    assert await expiring.may_continue() and expiring.wait_bound(1.0) <= 0.3
    revoked = InMemorySubjectDenylist()
    watch = StreamWatch(officer(), revoked, recheck_seconds=5.0)
    revoked.deny("officer-1")
    assert await watch.may_continue()  # not asked again before the recheck is due
    watch._next_check = time.monotonic() - 1
    assert not await watch.may_continue()


async def test_a_password_change_ends_a_stream_opened_with_an_earlier_token() -> None:
    issued = time.time()
    principal = Principal(subject_id="officer-1", role=Role.compliance, claims={"iat": issued})
    changes = InMemorySubjectDenylist()
    watch = StreamWatch(principal, changes, recheck_seconds=5.0)
    changes.void_before("officer-1", issued)  # a change at the instant it was issued: kept
    watch._next_check = time.monotonic() - 1
    assert await watch.may_continue()
    changes.void_before("officer-1", issued + 1)
    watch._next_check = time.monotonic() - 1
    assert not await watch.may_continue()


def test_slots_are_per_principal_and_released_once() -> None:
    slots = StreamSlots(per_principal=1)
    slot = slots.take("a")
    other = slots.take("b")
    with pytest.raises(AuditStreamLimitError, match="at most 1"):
        slots.take("a")
    slot.release()
    slot.release()
    assert slots.open_for("a") == 0 and slots.open_for("b") == 1
    other.release()
    assert slots.open_for("b") == 0
