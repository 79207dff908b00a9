"""Projections: known users from identity's events, and rebuilding every read model from the
event store (idempotent, erasure never undone)."""

from __future__ import annotations

import uuid
from typing import Any

from mmgen.events.envelope import Envelope, Resource
from mmgen.projects.adapters.memory import (
    InMemoryDisclosuresIndex,
    InMemoryFilesIndex,
    InMemoryMessagesIndex,
    InMemoryProjectsReadModel,
)
from mmgen.projects.adapters.projection import ProjectsProjector
from mmgen.projects.domain.events import Recipient
from mmgen.projects.testing import SAMPLES, in_memory, make_team, pieces
from mmgen.runtime.erasure import EraseOrder


def identity_event(kind: str, user_id: str, **data: Any) -> Envelope:
    return Envelope(
        event_type=f"identity.{kind}",
        schema_version=1,
        producer="identity",
        stream_id=user_id,
        stream_version=1,
        subject_id=user_id,
        action="create",
        resource=Resource(type="user", id=user_id),
        data=data,
    )


async def test_known_users_follow_identity() -> None:
    wired = in_memory()
    apply = wired.known_users_projector.apply
    user = str(uuid.uuid4())
    await apply(identity_event("UserRegistered", user, role="creator", registered_by="self"))
    await apply(identity_event("UserRegistered", user, role="creator", registered_by="self"))
    found = await wired.known_users.get(user)
    assert found is not None and (found.role, found.active) == ("creator", True)
    await apply(identity_event("AccountClosed", user, closed_by="self"))
    found = await wired.known_users.get(user)
    assert found is not None and found.status == "closed"
    await apply(identity_event("SubjectErased", user, subject_id=user, key_shredded=True))
    await apply(identity_event("UserRegistered", user, role="creator"))  # redelivered
    found = await wired.known_users.get(user)
    assert found is not None and (found.role, found.status) == (None, "erased")


async def test_a_held_identity_erasure_only_closes_the_account() -> None:
    wired = in_memory()
    user = str(uuid.uuid4())
    await wired.known_users_projector.apply(identity_event("UserRegistered", user, role="staff"))
    await wired.known_users_projector.apply(
        identity_event("SubjectErased", user, subject_id=user, key_shredded=False)
    )
    found = await wired.known_users.get(user)
    assert found is not None and found.status == "closed"


async def test_events_of_other_producers_or_types_are_ignored() -> None:
    wired = in_memory()
    user = str(uuid.uuid4())
    forged = identity_event("UserRegistered", user, role="staff").model_copy(
        update={"producer": "profiles"}
    )
    await wired.known_users_projector.apply(forged)
    await wired.known_users_projector.apply(identity_event("EmailCorrected", user))
    assert await wired.known_users.get(user) is None


async def test_read_models_rebuild_from_the_store() -> None:
    wired = in_memory()
    team = await make_team(wired)
    await wired.messages.post(team.owner, team.project_id, "first")
    await wired.messages.post(team.creator, team.project_id, "second")
    await wired.files.upload(
        team.creator,
        team.project_id,
        filename="a.gif",
        content_type="image/gif",
        body=pieces(SAMPLES["image/gif"]),
    )
    await wired.projects.change_status(team.owner, team.project_id, "in_progress")
    await wired.disclosures.create(
        team.owner,
        team.project_id,
        recipient=Recipient(type="public_authority", name="Tax"),
        purpose="legal_compliance",
        legal_basis="legal_obligation",
        categories=["project"],
        subject_ids=[team.owner.actor_id],
    )
    await wired.erasure.erase_subject(
        EraseOrder("r", team.creator.actor_id, frozenset(), envelope_stub())
    )
    fresh = ProjectsProjector(
        wired.kernel.repository,
        wired.kernel.keystore,
        InMemoryProjectsReadModel(),
        InMemoryMessagesIndex(),
        InMemoryFilesIndex(),
        wired.chunks,
        InMemoryDisclosuresIndex(),
    )
    envelopes = await wired.kernel.store.read_range(1, 1000)
    for _ in range(2):  # twice: a replay changes nothing
        for envelope in envelopes:
            await fresh.apply(envelope)
    rebuilt = await fresh.projects.get(team.project_id)
    original = await wired.projects_rm.get(team.project_id)
    assert rebuilt == original
    messages = await fresh.messages.window(team.project_id, [2, 1])
    assert [(m.number, m.erased, m.author_id) for m in messages] == [
        (2, True, None),  # the erased creator's message comes back erased, not readable
        (1, False, team.owner.actor_id),
    ]
    assert await fresh.messages.next_number(team.project_id) == 3  # numbering kept ahead
    (file_row,) = await fresh.files.window(team.project_id, [1])
    assert file_row.erased and file_row.name_pii is None
    assert await fresh.disclosures.count_of_subject(team.owner.actor_id) == 1


def envelope_stub() -> Envelope:
    return Envelope(
        event_type="retention.EraseSubject",
        schema_version=1,
        producer="retention",
        stream_id="r",
        stream_version=1,
        action="erase",
        resource=Resource(type="subject", id="s"),
    )
