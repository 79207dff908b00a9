"""`SubjectRevocations`: identity's closing events revoke subjects, and its password changes and
second factors switched on void earlier tokens, persisted in the consuming service's database
and seen by every replica within the negative-cache bound."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from mmgen.events.consumer import HandlerContext
from mmgen.events.envelope import Envelope, Resource
from mmgen.events.revocation import (
    ACCOUNT_CLOSED,
    PASSWORD_CHANGED,
    SUBJECT_ERASED,
    TOTP_ACTIVATED,
    SubjectRevocations,
)

VOIDING = pytest.mark.parametrize("voiding", [PASSWORD_CHANGED, TOTP_ACTIVATED])


def identity_event(
    event_type: str, subject_id: str, data: dict[str, Any] | None = None
) -> Envelope:
    return Envelope(
        data=data or {},
        event_type=event_type,
        schema_version=1,
        producer="identity",
        producer_seq=1,
        stream_id=subject_id,
        stream_version=2,
        subject_id=subject_id,
        action="delete",
        resource=Resource(type="user", id=subject_id),
    )


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def handle(
    revocations: SubjectRevocations, mongo_client: Any, db: Any, env: Envelope
) -> None:
    async with mongo_client.start_session() as session:
        ctx = HandlerContext(
            session=session, db=db, consumer="c", topic="t", partition=0, offset=0, attempt=1
        )
        await revocations.handle(env, ctx)


async def test_closing_events_revoke_and_others_do_not(mongo_client: Any, mongo_db: Any) -> None:
    revocations = SubjectRevocations(mongo_db)
    closed, erased, other = (str(uuid.uuid4()) for _ in range(3))
    await handle(revocations, mongo_client, mongo_db, identity_event(ACCOUNT_CLOSED, closed))
    await handle(revocations, mongo_client, mongo_db, identity_event(SUBJECT_ERASED, erased))
    await handle(
        revocations, mongo_client, mongo_db, identity_event("identity.NameCorrected", other)
    )
    assert await revocations.is_denied(closed)
    assert await revocations.is_denied(erased)
    assert not await revocations.is_denied(other)
    doc = await mongo_db["revoked_subjects"].find_one({"_id": closed})
    assert doc["reason"] == ACCOUNT_CLOSED


async def test_another_replica_learns_it_within_the_negative_ttl(mongo_db: Any) -> None:
    clock = Clock()
    writer = SubjectRevocations(mongo_db)
    reader = SubjectRevocations(mongo_db, negative_ttl_s=1.0, clock=clock)
    subject = str(uuid.uuid4())
    assert not await reader.is_denied(subject)  # cached as "not revoked" for 1 s
    await writer.revoke(subject, reason=ACCOUNT_CLOSED)
    assert not await reader.is_denied(subject)  # still within the bound
    clock.now = 1.5
    assert await reader.is_denied(subject)
    clock.now = 100.0
    await mongo_db["revoked_subjects"].delete_many({})
    assert await reader.is_denied(subject)  # a revocation is remembered for good


@VOIDING
async def test_a_credentials_change_sets_the_instant_before_which_tokens_are_void(
    mongo_client: Any, mongo_db: Any, voiding: str
) -> None:
    clock = Clock()
    revocations = SubjectRevocations(mongo_db, clock=clock)
    reader = SubjectRevocations(mongo_db, negative_ttl_s=1.0, clock=clock)
    subject, other = str(uuid.uuid4()), str(uuid.uuid4())
    assert await reader.not_before(subject) is None  # cached as "none" for 1 s

    changed = identity_event(voiding, subject, {"tokens_not_before": 1_700_000_100})
    await handle(revocations, mongo_client, mongo_db, changed)
    assert await revocations.not_before(subject) == 1_700_000_100
    assert not await revocations.is_denied(subject)  # the account itself stays open
    assert await revocations.not_before(other) is None
    assert await reader.not_before(subject) is None  # within the bound
    clock.now = 1.5
    assert await reader.not_before(subject) == 1_700_000_100  # another replica learns it

    # An older change read late (a redelivery, another partition) does not move it back.
    older = identity_event(voiding, subject, {"tokens_not_before": 1_700_000_000})
    await handle(revocations, mongo_client, mongo_db, older)
    later = identity_event(voiding, subject, {"tokens_not_before": 1_700_000_200})
    await handle(revocations, mongo_client, mongo_db, later)
    clock.now = 3.0
    assert await reader.not_before(subject) == 1_700_000_200
    doc = await mongo_db["subject_not_before"].find_one({"_id": subject})
    assert doc["not_before"] == 1_700_000_200 and doc["event_id"] == later.event_id


@VOIDING
async def test_a_credentials_change_without_the_instant_uses_when_it_happened(
    mongo_client: Any, mongo_db: Any, voiding: str
) -> None:
    revocations = SubjectRevocations(mongo_db)
    subject = str(uuid.uuid4())
    event = identity_event(voiding, subject)
    await handle(revocations, mongo_client, mongo_db, event)
    assert await revocations.not_before(subject) == int(event.occurred_at.timestamp()) + 1
