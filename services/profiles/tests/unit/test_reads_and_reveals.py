"""Reads and reveals through the use cases, with relations learnt from other services' events.

Consent and membership changes take effect on the next read after their event is applied:
there is no cache between the read models and the reveal rule.
"""

from __future__ import annotations

import pytest

from mmgen.events.envelope import Actor
from mmgen.profiles.domain.errors import ProfileNotFoundError, RevealNotAllowedError
from mmgen.profiles.domain.reveal import ANONYMOUS, Basis, Viewer
from mmgen.profiles.service_layer.profiles import (
    ProfileHiddenError,
    read_profile,
    reveal_sensitive,
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


async def reveal(parts: Profiles, viewer: Viewer, creator: str):  # type: ignore[no-untyped-def]
    return await reveal_sensitive(
        parts.profiles, parts.relationships, parts.repository, viewer=viewer, creator_id=creator
    )


async def read(parts: Profiles, viewer: Viewer, creator: str):  # type: ignore[no-untyped-def]
    return await read_profile(
        parts.profiles, parts.relationships, viewer=viewer, creator_id=creator
    )


async def test_a_client_sees_the_public_part_and_nothing_sensitive_without_consent(
    parts: Profiles,
) -> None:
    own = await parts.creator()
    client = Viewer(new_id(), "client")
    result = await read(parts, client, own.creator_id)
    assert result.profile.details.display_name == "Mia Laurent"
    assert not result.can_reveal and result.access is None
    assert not hasattr(result.profile, "sensitive")
    with pytest.raises(RevealNotAllowedError):
        await reveal(parts, client, own.creator_id)


async def test_consent_granted_reveals_until_the_withdrawal_is_applied(parts: Profiles) -> None:
    own = await parts.creator()
    creator, client = own.creator_id, Viewer(new_id(), "client")
    await parts.deliver(consent_event(creator, granted=True, version=3))
    assert (await read(parts, client, creator)).can_reveal
    shown = await reveal(parts, client, creator)
    assert shown.basis is Basis.consent
    assert shown.sensitive.phone == "+33 6 12 34 56 78"
    assert shown.fields == ALL_SENSITIVE
    assert shown.access is not None
    assert shown.access.fields == ALL_SENSITIVE
    assert shown.access.categories == ("sensitive",)
    assert shown.access.subject_id == creator

    await parts.deliver(consent_event(creator, granted=False, version=4))
    assert not (await read(parts, client, creator)).can_reveal
    with pytest.raises(RevealNotAllowedError):
        await reveal(parts, client, creator)


async def test_a_late_grant_does_not_undo_a_withdrawal(parts: Profiles) -> None:
    own = await parts.creator()
    client = Viewer(new_id(), "client")
    await parts.deliver(consent_event(own.creator_id, granted=False, version=7))
    await parts.deliver(consent_event(own.creator_id, granted=True, version=5))  # older
    with pytest.raises(RevealNotAllowedError):
        await reveal(parts, client, own.creator_id)


async def test_other_purposes_do_not_open_sensitive_fields(parts: Profiles) -> None:
    own = await parts.creator()
    await parts.deliver(
        consent_event(own.creator_id, granted=True, version=2, purpose="marketing.email")
    )
    with pytest.raises(RevealNotAllowedError):
        await reveal(parts, Viewer(new_id(), "client"), own.creator_id)


async def test_consent_opens_nothing_to_other_creators_or_staff(parts: Profiles) -> None:
    own = await parts.creator()
    await parts.deliver(consent_event(own.creator_id, granted=True, version=2))
    for viewer in (Viewer(new_id(), "creator"), Viewer(new_id(), "staff", "support")):
        with pytest.raises(RevealNotAllowedError):
            await reveal(parts, viewer, own.creator_id)


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
        shown = await reveal(parts, viewer, creator)
        assert shown.basis is Basis.shared_project and shown.fields == ALL_SENSITIVE
        assert shown.access is not None and shown.access.purpose == "project_execution"
    for viewer in (
        Viewer(owner, "client"),
        Viewer(owner, "client", "support"),
        Viewer(staff, "staff", "support"),
        Viewer(outsider, "client", "project_execution"),
    ):
        with pytest.raises(RevealNotAllowedError):
            await reveal(parts, viewer, creator)


async def test_a_removed_membership_stops_reveals_at_once(parts: Profiles) -> None:
    own = await parts.creator()
    creator, owner, project = own.creator_id, new_id(), new_id()
    viewer = Viewer(owner, "client", "project_execution")
    await parts.deliver(
        project_created(project, owner), membership_event(project, creator, added=True, version=2)
    )
    assert (await reveal(parts, viewer, creator)).fields
    await parts.deliver(membership_event(project, creator, added=False, version=3))
    with pytest.raises(RevealNotAllowedError):
        await reveal(parts, viewer, creator)
    # A redelivered MemberAdded (older version) does not bring it back.
    await parts.deliver(membership_event(project, creator, added=True, version=2))
    with pytest.raises(RevealNotAllowedError):
        await reveal(parts, viewer, creator)


async def test_a_membership_seen_before_the_project_still_counts(parts: Profiles) -> None:
    own = await parts.creator()
    owner, project = new_id(), new_id()
    await parts.deliver(membership_event(project, own.creator_id, added=True, version=2))
    with pytest.raises(RevealNotAllowedError):
        await reveal(parts, Viewer(owner, "client", "project_execution"), own.creator_id)
    await parts.deliver(project_created(project, owner))
    assert (await reveal(parts, Viewer(owner, "client", PX), own.creator_id)).fields


async def test_unpublished_profiles_are_hidden_and_the_refusal_is_recorded(
    parts: Profiles,
) -> None:
    own = await parts.creator(publish=False)
    creator = own.creator_id
    await parts.deliver(consent_event(creator, granted=True, version=2))
    for viewer in (Viewer(new_id(), "client"), Viewer(new_id(), "creator"), ANONYMOUS):
        with pytest.raises(ProfileHiddenError) as hidden:
            await read(parts, viewer, creator)
        assert hidden.value.denial.subject_id == creator
        assert hidden.value.denial.status == 404
        with pytest.raises(ProfileNotFoundError):
            await reveal(parts, viewer, creator)
    with pytest.raises(ProfileNotFoundError) as missing:
        await read(parts, Viewer(new_id(), "client"), new_id())
    assert not isinstance(missing.value, ProfileHiddenError)  # nothing to record


async def test_staff_with_a_purpose_read_unpublished_profiles_audited(parts: Profiles) -> None:
    own = await parts.creator(publish=False)
    result = await read(parts, Viewer(new_id(), "compliance", "legal_compliance"), own.creator_id)
    assert result.access is not None
    assert result.access.purpose == "legal_compliance"
    assert result.access.categories == ("portfolio",)
    assert "display_name" in result.access.fields
    assert not result.can_reveal
    with pytest.raises(ProfileHiddenError):
        await read(parts, Viewer(new_id(), "staff"), own.creator_id)


async def test_the_owner_reveals_their_own_without_an_access_event(parts: Profiles) -> None:
    own = await parts.creator(publish=False)
    shown = await reveal(parts, Viewer(own.creator_id, "creator"), own.creator_id)
    assert shown.basis is Basis.owner and shown.fields == ALL_SENSITIVE
    assert shown.access is None


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
    shown = await reveal(parts, Viewer(client_id, "client"), own.creator_id)
    assert shown.access is not None
    before = await parts.kernel.store.last_seq()
    await shown.access.record(
        parts.trail, Actor(id=client_id, role="client"), route="/profiles/{user_id}/sensitive"
    )
    (event,) = await parts.kernel.store.read_range(before + 1, before + 2)
    assert event.event_type == "profiles.DataAccessed"
    assert event.data["fields"] == list(ALL_SENSITIVE)
    assert event.subject_id == own.creator_id
    assert event.categories == ("sensitive",)
    assert event.pii is None
    assert b"+33" not in event.to_wire()
