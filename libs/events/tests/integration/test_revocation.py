"""`SubjectRevocations`: identity's closing events revoke subjects, persisted in the consuming
service's database and seen by every replica within the negative-cache bound."""

from __future__ import annotations

import uuid
from typing import Any

from mmgen.events.consumer import HandlerContext
from mmgen.events.envelope import Envelope, Resource
from mmgen.events.revocation import ACCOUNT_CLOSED, SUBJECT_ERASED, SubjectRevocations


def identity_event(event_type: str, subject_id: str) -> Envelope:
    return Envelope(
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
