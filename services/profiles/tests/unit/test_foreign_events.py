"""The inbox handlers: idempotent, version-guarded, strict about the data they rely on."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mmgen.events.errors import EventDataInvalidError
from mmgen.profiles.adapters.foreign import IDENTITY_EVENT_TYPES
from mmgen.profiles.adapters.read_models import shared_projects
from mmgen.runtime.erasure import parse_erase
from mmgen.runtime.testing import erase_command

from ..conftest import (
    Profiles,
    consent_event,
    foreign_envelope,
    membership_event,
    new_id,
    project_created,
)


async def test_consent_decisions_keep_the_latest_version(parts: Profiles) -> None:
    creator = new_id()
    granted = consent_event(creator, granted=True, version=2)
    await parts.deliver(granted, granted)  # redelivered: no change
    grant = await parts.consents.get(creator)
    assert grant is not None and grant.granted and grant.version == 2
    assert grant.event_id == granted.event_id
    await parts.deliver(consent_event(creator, granted=False, version=5))
    await parts.deliver(consent_event(creator, granted=True, version=4))  # late, older
    assert not await parts.consents.is_granted(creator)
    await parts.deliver(consent_event(creator, granted=True, version=6))
    assert await parts.consents.is_granted(creator)


async def test_consents_for_other_purposes_are_ignored(parts: Profiles) -> None:
    creator = new_id()
    await parts.deliver(
        consent_event(creator, granted=True, version=1, purpose="cookies.analytics")
    )
    assert await parts.consents.get(creator) is None


async def test_malformed_foreign_events_are_refused_for_the_dead_letter_topic(
    parts: Profiles,
) -> None:
    with pytest.raises(ValidationError):
        await parts.deliver(
            foreign_envelope(
                "consent.ConsentGranted",
                {"policy_version": "v1"},
                subject_id=new_id(),
                stream_id="s",
                stream_version=1,
            )
        )
    with pytest.raises(EventDataInvalidError):
        await parts.deliver(
            foreign_envelope(
                "consent.ConsentGranted",
                {"purpose": "profile.sensitive_sharing"},
                subject_id=None,
                stream_id="s",
                stream_version=1,
            )
        )
    with pytest.raises(ValidationError):
        await parts.deliver(
            foreign_envelope(
                "projects.MemberAdded",
                {"project_id": "p", "user_id": "not-a-uuid", "role": "creator"},
                subject_id=None,
                stream_id="p",
                stream_version=2,
            )
        )
    with pytest.raises(ValidationError):
        await parts.deliver(
            foreign_envelope(
                "projects.MemberAdded",
                {"project_id": "p", "user_id": new_id(), "role": "owner"},
                subject_id=None,
                stream_id="p",
                stream_version=2,
            )
        )


async def test_memberships_pair_a_creator_with_the_owner_and_other_members(
    parts: Profiles,
) -> None:
    creator, owner, staff, other_creator = new_id(), new_id(), new_id(), new_id()
    project, other_project = new_id(), new_id()
    await parts.deliver(
        project_created(project, owner),
        membership_event(project, creator, added=True, version=2),
        membership_event(project, staff, added=True, version=3, role="staff"),
        membership_event(project, other_creator, added=True, version=4),
        project_created(other_project, owner),
    )
    m = parts.memberships
    assert await shared_projects(m, creator, owner) == {project}
    assert await shared_projects(m, creator, staff) == {project}
    assert await shared_projects(m, creator, other_creator) == {project}
    assert await shared_projects(m, owner, creator) == frozenset()  # the owner is no creator
    assert await shared_projects(m, staff, creator) == frozenset()  # staff are no creators
    assert await shared_projects(m, creator, creator) == frozenset()
    await parts.deliver(membership_event(project, staff, added=False, version=5, role="staff"))
    assert await shared_projects(m, creator, staff) == frozenset()
    assert await shared_projects(m, creator, owner) == {project}


async def test_nothing_is_recorded_again_for_an_erased_subject(parts: Profiles) -> None:
    creator, owner, project = new_id(), new_id(), new_id()
    await parts.erasure.erase_subject(parse_erase(erase_command(creator)))
    await parts.deliver(
        consent_event(creator, granted=True, version=9),
        project_created(project, owner),
        membership_event(project, creator, added=True, version=2),
    )
    assert await parts.consents.get(creator) is None
    assert await parts.memberships.of_user(creator) == []
    assert len(await parts.memberships.of_user(owner)) == 1


@pytest.mark.parametrize("event_type", sorted(IDENTITY_EVENT_TYPES))
async def test_an_ended_account_is_hidden_and_off_search(parts: Profiles, event_type: str) -> None:
    own = await parts.creator()
    assert await parts.index.count(own.creator_id) > 0
    data = {"subject_id": own.creator_id} if event_type.endswith("SubjectErased") else {}
    await parts.deliver(
        foreign_envelope(
            event_type, data, subject_id=own.creator_id, stream_id=own.creator_id, stream_version=3
        )
    )
    row = await parts.profiles.get(own.creator_id)
    assert row is not None and row.closed and not row.listed
    assert await parts.index.count(own.creator_id) == 0
    # Its own events replayed later do not list it again.
    await parts.catch_up()
    await parts.projection.refresh(own.creator_id)
    assert await parts.index.count(own.creator_id) == 0


async def test_an_account_closed_before_its_profile_is_projected_stays_hidden(
    parts: Profiles,
) -> None:
    creator = new_id()
    await parts.deliver(
        foreign_envelope(
            "identity.AccountClosed", {}, subject_id=creator, stream_id=creator, stream_version=2
        )
    )
    assert await parts.profiles.get(creator) is None
    await parts.creator(creator_id=creator)
    row = await parts.profiles.get(creator)
    assert row is not None and row.closed
    assert await parts.index.count(creator) == 0
