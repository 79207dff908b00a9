"""The erasure participant: erase, hold, anonymise, export and footprint of a subject."""

from __future__ import annotations

import pytest

from mmgen.profiles.domain.errors import ProfileErasedError
from mmgen.profiles.service_layer.profiles import get_own_profile
from mmgen.runtime.erasure import parse_anonymize, parse_erase
from mmgen.runtime.testing import anonymize_command, erase_command

from ..conftest import (
    Profiles,
    consent_event,
    creator_actor,
    membership_event,
    new_id,
    project_created,
)


async def creator_with_everything(parts: Profiles) -> tuple[str, str]:
    own = await parts.creator()
    owner, project = new_id(), new_id()
    await parts.deliver(
        consent_event(own.creator_id, granted=True, version=2),
        project_created(project, owner),
        membership_event(project, own.creator_id, added=True, version=2),
    )
    return own.creator_id, owner


async def test_footprint_and_export_before_erasure(parts: Profiles) -> None:
    creator, _ = await creator_with_everything(parts)
    footprint = await parts.erasure.footprint(creator)
    assert not footprint.key_erased
    assert set(footprint.categories) == {"portfolio", "sensitive", "consent", "project"}
    assert footprint.categories["sensitive"].readable_personal_fields == 5
    assert footprint.categories["consent"].records == 1
    assert footprint.categories["project"].records == 1
    assert footprint.readable_personal_fields > 0
    export = await parts.erasure.export(creator)
    assert not export.erased
    profile = export.records["profile"]
    assert profile["details"]["display_name"] == "Mia Laurent"
    assert profile["sensitive"]["phone"] == "+33 6 12 34 56 78"
    assert export.records["sensitive_sharing_consent"]["granted"] is True
    assert export.records["project_memberships"][0]["role"] == "creator"
    assert export.records["search_postings"] > 0
    assert [e.event_type for e in export.events] == [
        "profiles.ProfileCreated",
        "profiles.SensitiveDetailsSet",
        "profiles.ProfilePublished",
    ]
    assert export.events[1].personal is not None
    assert export.events[1].personal["email"] == "mia.laurent@example.org"


async def test_erasure_shreds_the_key_and_leaves_nothing_readable(parts: Profiles) -> None:
    creator, owner = await creator_with_everything(parts)
    postings = await parts.index.count(creator)
    outcome = await parts.erasure.erase_subject(parse_erase(erase_command(creator)))
    assert outcome.keys_shredded == 1
    assert outcome.records_deleted == {"consent": 1, "portfolio": postings + 1, "project": 1}
    assert outcome.categories_held == []
    footprint = await parts.erasure.footprint(creator)
    assert footprint.key_erased
    assert footprint.readable_personal_fields == 0
    # The events remain (created, sensitive details set), unreadable.
    assert footprint.categories["portfolio"].records == 1
    assert footprint.categories["sensitive"].records == 1
    export = await parts.erasure.export(creator)
    assert export.erased
    assert export.records["profile"]["details"] == {"erased": True}
    assert export.records["profile"]["sensitive"] == {"erased": True}
    assert all(e.personal in (None, {"erased": True}) for e in export.events)
    with pytest.raises(ProfileErasedError):
        await get_own_profile(parts.repository, actor=creator_actor(creator))
    # The project's owner keeps their own membership.
    assert len(await parts.memberships.of_user(owner)) == 1
    again = await parts.erasure.erase_subject(parse_erase(erase_command(creator)))
    assert again.keys_shredded == 0 and again.records_deleted == {}


async def test_a_hold_on_the_profile_keeps_the_key_but_hides_the_profile(parts: Profiles) -> None:
    creator, _ = await creator_with_everything(parts)
    outcome = await parts.erasure.erase_subject(
        parse_erase(erase_command(creator, held=["portfolio", "consent"]))
    )
    assert outcome.keys_shredded == 0
    assert outcome.categories_held == ["consent", "portfolio"]
    assert "consent" not in outcome.records_deleted
    assert outcome.records_deleted["project"] == 1
    row = await parts.profiles.get(creator)
    assert row is not None and not row.listed
    assert await parts.index.count(creator) == 0
    footprint = await parts.erasure.footprint(creator)
    assert not footprint.key_erased
    assert footprint.categories["consent"].readable_personal_fields == 1
    assert footprint.categories.get("project") is None


async def test_erasing_a_client_deletes_their_memberships(parts: Profiles) -> None:
    creator, owner = await creator_with_everything(parts)
    outcome = await parts.erasure.erase_subject(parse_erase(erase_command(owner)))
    assert outcome.records_deleted == {"project": 1}
    assert outcome.keys_shredded == 0  # no key was ever minted for them
    assert (await parts.erasure.footprint(owner)).readable_personal_fields == 0
    assert len(await parts.memberships.of_user(creator)) == 1


async def test_anonymising_a_resource_changes_nothing_here(parts: Profiles) -> None:
    creator, _ = await creator_with_everything(parts)
    for kind, ident in (("profile", creator), ("project", new_id())):
        outcome = await parts.erasure.anonymize_resource(
            parse_anonymize(anonymize_command(kind, ident))
        )
        assert outcome.keys_shredded == 0 and outcome.records_anonymized == {}
    assert (await parts.erasure.footprint(creator)).readable_personal_fields > 0
