"""Reads under the reveal rule through the use case, with relations learnt from other services'
events.

Consent and membership changes take effect on the next read after their event is applied:
there is no cache between the read models and the reveal rule.
"""

from __future__ import annotations

import pytest

from mmgen.events.envelope import Actor
from mmgen.profiles.domain.errors import ProfileNotFoundError
from mmgen.profiles.domain.reveal import ANONYMOUS, Basis, Viewer
from mmgen.profiles.service_layer.profiles import (
    ProfileHiddenError,
    ProfileRead,
    read_profile,
    unpublish_profile,
)

from ..conftest import (
    Profiles,
    consent_event,
    creator_actor,
    membership_event,
    new_id,
    project_created,
)

PX = "project_execution"
ALL_SENSITIVE = ("phone", "email", "date_of_birth", "address", "measurements")


async def read(parts: Profiles, viewer: Viewer, creator: str) -> ProfileRead:
    return await read_profile(
        parts.profiles, parts.relationships, parts.repository, viewer=viewer, creator_id=creator
    )


async def revealed_to(parts: Profiles, viewer: Viewer, creator: str) -> tuple[str, ...]:
    """The sensitive field names the viewer is shown (none when not revealed)."""
    result = await read(parts, viewer, creator)
    return result.revealed.fields if result.revealed is not None else ()


async def test_a_client_sees_the_public_part_and_nothing_sensitive_without_consent(
    parts: Profiles,
) -> None:
    own = await parts.creator()
    client = Viewer(new_id(), "client")
    result = await read(parts, client, own.creator_id)
    assert result.profile.details.display_name == "Mia Laurent"
    assert result.revealed is None and result.accesses == ()
    assert not hasattr(result.profile, "sensitive")


async def test_consent_granted_reveals_until_the_withdrawal_is_applied(parts: Profiles) -> None:
    own = await parts.creator()
    creator, client = own.creator_id, Viewer(new_id(), "client")
    await parts.deliver(consent_event(creator, granted=True, version=3))
    shown = await read(parts, client, creator)
    assert shown.revealed is not None
    assert shown.revealed.basis is Basis.consent
    assert shown.revealed.sensitive.phone == "+33 6 12 34 56 78"
    assert shown.revealed.fields == ALL_SENSITIVE
    (access,) = shown.accesses
    assert access.fields == ALL_SENSITIVE
    assert access.categories == ("sensitive",)
    assert access.subject_id == creator

    await parts.deliver(consent_event(creator, granted=False, version=4))
    hidden = await read(parts, client, creator)
    assert hidden.revealed is None and hidden.accesses == ()


async def test_a_late_grant_does_not_undo_a_withdrawal(parts: Profiles) -> None:
    own = await parts.creator()
    client = Viewer(new_id(), "client")
    await parts.deliver(consent_event(own.creator_id, granted=False, version=7))
    await parts.deliver(consent_event(own.creator_id, granted=True, version=5))  # older
    assert await revealed_to(parts, client, own.creator_id) == ()


async def test_other_purposes_do_not_open_sensitive_fields(parts: Profiles) -> None:
    own = await parts.creator()
    await parts.deliver(
        consent_event(own.creator_id, granted=True, version=2, purpose="marketing.email")
    )
    assert await revealed_to(parts, Viewer(new_id(), "client"), own.creator_id) == ()


async def test_consent_opens_nothing_to_other_creators_or_staff(parts: Profiles) -> None:
    own = await parts.creator()
    await parts.deliver(consent_event(own.creator_id, granted=True, version=2))
    for viewer in (Viewer(new_id(), "creator"), Viewer(new_id(), "staff", "support")):
        assert await revealed_to(parts, viewer, own.creator_id) == ()


async def test_project_members_see_sensitive_fields_for_project_execution_only(
    parts: Profiles,
) -> None:
    own = await parts.creator()
    creator, owner, staff, outsider = own.creator_id, new_id(), new_id(), new_id()
    project = new_id()
    await parts.deliver(
        project_created(project, owner),
        membership_event(project, creator, added=True, version=2),
        membership_event(project, staff, added=True, version=3, role="staff"),
    )
    for viewer in (Viewer(owner, "client", PX), Viewer(staff, "staff", PX)):
        shown = await read(parts, viewer, creator)
        assert shown.revealed is not None
        assert shown.revealed.basis is Basis.shared_project
        assert shown.revealed.fields == ALL_SENSITIVE
        sensitive_access = [a for a in shown.accesses if a.categories == ("sensitive",)]
        assert [a.purpose for a in sensitive_access] == ["project_execution"]
    for viewer in (
        Viewer(owner, "client"),
        Viewer(owner, "client", "support"),
        Viewer(staff, "staff", "support"),
        Viewer(outsider, "client", "project_execution"),
    ):
        assert await revealed_to(parts, viewer, creator) == ()


async def test_a_removed_membership_stops_reveals_at_once(parts: Profiles) -> None:
    own = await parts.creator()
    creator, owner, project = own.creator_id, new_id(), new_id()
    viewer = Viewer(owner, "client", "project_execution")
    await parts.deliver(
        project_created(project, owner), membership_event(project, creator, added=True, version=2)
    )
    assert await revealed_to(parts, viewer, creator) == ALL_SENSITIVE
    await parts.deliver(membership_event(project, creator, added=False, version=3))
    assert await revealed_to(parts, viewer, creator) == ()
    # A redelivered MemberAdded (older version) does not bring it back.
    await parts.deliver(membership_event(project, creator, added=True, version=2))
    assert await revealed_to(parts, viewer, creator) == ()


async def test_a_membership_seen_before_the_project_still_counts(parts: Profiles) -> None:
    own = await parts.creator()
    owner, project = new_id(), new_id()
    await parts.deliver(membership_event(project, own.creator_id, added=True, version=2))
    assert await revealed_to(parts, Viewer(owner, "client", PX), own.creator_id) == ()
    await parts.deliver(project_created(project, owner))
    assert await revealed_to(parts, Viewer(owner, "client", PX), own.creator_id)


async def test_unpublished_profiles_are_hidden_and_the_refusal_is_recorded(
    parts: Profiles,
) -> None:
    own = await parts.creator(publish=False)
    creator = own.creator_id
    await parts.deliver(consent_event(creator, granted=True, version=2))
    for viewer in (
        Viewer(new_id(), "client"),
        Viewer(new_id(), "client", PX),
        Viewer(new_id(), "creator"),
        ANONYMOUS,
    ):
        with pytest.raises(ProfileHiddenError) as hidden:
            await read(parts, viewer, creator)
        assert hidden.value.denial.subject_id == creator
        assert hidden.value.denial.status == 404
    with pytest.raises(ProfileNotFoundError) as missing:
        await read(parts, Viewer(new_id(), "client"), new_id())
    assert not isinstance(missing.value, ProfileHiddenError)  # nothing to record


async def test_staff_with_a_purpose_read_unpublished_profiles_audited(parts: Profiles) -> None:
    own = await parts.creator(publish=False)
    result = await read(parts, Viewer(new_id(), "compliance", "legal_compliance"), own.creator_id)
    (access,) = result.accesses
    assert access.purpose == "legal_compliance"
    assert access.categories == ("portfolio",)
    assert "display_name" in access.fields
    assert result.revealed is None
    with pytest.raises(ProfileHiddenError):
        await read(parts, Viewer(new_id(), "staff"), own.creator_id)


async def test_the_owner_sees_their_own_sensitive_fields_without_an_access_event(
    parts: Profiles,
) -> None:
    own = await parts.creator(publish=False)
    shown = await read(parts, Viewer(own.creator_id, "creator"), own.creator_id)
    assert shown.revealed is not None
    assert shown.revealed.basis is Basis.owner and shown.revealed.fields == ALL_SENSITIVE
    assert shown.accesses == ()


async def test_an_unpublished_profile_disappears_for_clients_after_projection(
    parts: Profiles,
) -> None:
    own = await parts.creator()
    client = Viewer(new_id(), "client")
    await read(parts, client, own.creator_id)
    await unpublish_profile(parts.repository, actor=creator_actor(own.creator_id))
    await parts.catch_up()
    with pytest.raises(ProfileHiddenError):
        await read(parts, client, own.creator_id)


async def test_reveals_are_recorded_by_the_audit_trail_with_field_names(parts: Profiles) -> None:
    own = await parts.creator()
    await parts.deliver(consent_event(own.creator_id, granted=True, version=2))
    client_id = new_id()
    shown = await read(parts, Viewer(client_id, "client"), own.creator_id)
    (access,) = shown.accesses
    before = await parts.kernel.store.last_seq()
    await access.record(
        parts.trail, Actor(id=client_id, role="client"), route="/profiles/{user_id}"
    )
    (event,) = await parts.kernel.store.read_range(before + 1, before + 2)
    assert event.event_type == "profiles.DataAccessed"
    assert event.data["fields"] == list(ALL_SENSITIVE)
    assert event.subject_id == own.creator_id
    assert event.categories == ("sensitive",)
    assert event.pii is None
    assert b"+33" not in event.to_wire()
