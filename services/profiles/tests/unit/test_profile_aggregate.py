"""The CreatorProfile aggregate and its events: what is recorded, and that no value is in clear."""

from __future__ import annotations

import re

import pytest

from mmgen.events.envelope import Actor
from mmgen.events.erased import is_erased
from mmgen.profiles.domain.errors import (
    NotACreatorError,
    ProfileErasedError,
    ProfileNotFoundError,
)
from mmgen.profiles.domain.events import (
    PROFILE_CHANGED,
    PROFILE_CREATED,
    PROFILE_PUBLISHED,
    PROFILE_UNPUBLISHED,
    SENSITIVE_DETAILS_SET,
    PublicField,
)
from mmgen.profiles.domain.model import CreatorProfile, profile_stream
from mmgen.profiles.domain.profile import PUBLIC_FIELDS, SensitiveDetails
from mmgen.profiles.service_layer.profiles import (
    get_own_profile,
    publish_profile,
    put_profile,
    unpublish_profile,
)

from ..conftest import TODAY, Profiles, creator_actor, details, new_id, sensitive


async def stored(parts: Profiles, creator: str) -> list[tuple[str, dict, bytes]]:
    envelopes = await parts.kernel.store.load(profile_stream(creator))
    return [(e.event_type, e.data, e.to_wire()) for e in envelopes]


async def test_first_put_records_the_profile_and_the_sensitive_details(parts: Profiles) -> None:
    creator = new_id()
    own, changed = await put_profile(
        parts.repository,
        actor=creator_actor(creator),
        details=details(),
        sensitive=sensitive(),
        today=TODAY,
    )
    assert changed == [*PUBLIC_FIELDS, "sensitive"]
    assert own.details == details() and own.sensitive == sensitive()
    assert not own.published and own.version == 2
    events = await stored(parts, creator)
    assert [t for t, _, _ in events] == [PROFILE_CREATED, SENSITIVE_DETAILS_SET]
    assert events[0][1] == {
        "skill_count": 2,
        "language_count": 2,
        "experience_count": 1,
        "portfolio_count": 1,
    }
    assert events[1][1] == {"fields_set": 5}


async def test_no_value_of_a_profile_is_in_clear_in_its_events(parts: Profiles) -> None:
    creator = new_id()
    await put_profile(
        parts.repository,
        actor=creator_actor(creator),
        details=details(),
        sensitive=sensitive(),
        today=TODAY,
    )
    await put_profile(
        parts.repository,
        actor=creator_actor(creator),
        details=details(city="Marseille"),
        sensitive=sensitive(phone="+33 7 00 11 22 33"),
        today=TODAY,
    )
    wire = b" ".join(raw for _, _, raw in await stored(parts, creator))
    for value in (
        "Mia Laurent",
        "Lyon",
        "Marseille",
        "Runway",
        "Maison Rouge",
        "example.com",
        "+33 6 12 34 56 78",
        "+33 7 00 11 22 33",
        "mia.laurent",
        "1996-04-17",
        "Victor Hugo",
        "178",
        "model",  # even the category: beside the creator's id it says who they are
    ):
        # Standing alone, not inside a run of base64 or an id, where a short value like "178"
        # turns up by chance (about one run in a hundred).
        in_clear = rb"(?<![A-Za-z0-9+/])" + re.escape(value.encode()) + rb"(?![A-Za-z0-9+/])"
        assert re.search(in_clear, wire) is None, value
    for envelope in await parts.kernel.store.load(profile_stream(creator)):
        assert envelope.pii is not None and envelope.pii.owner == f"subject:{creator}"


async def test_a_put_that_changes_nothing_records_nothing(parts: Profiles) -> None:
    creator = new_id()
    actor = creator_actor(creator)
    await put_profile(
        parts.repository, actor=actor, details=details(), sensitive=sensitive(), today=TODAY
    )
    own, changed = await put_profile(
        parts.repository, actor=actor, details=details(), sensitive=sensitive(), today=TODAY
    )
    assert changed == [] and own.version == 2
    own, changed = await put_profile(
        parts.repository,
        actor=actor,
        details=details(bio="New bio.", skills=["Runway"]),
        sensitive=sensitive(),
        today=TODAY,
    )
    assert changed == ["bio", "skills"]
    events = await stored(parts, creator)
    assert events[-1][0] == PROFILE_CHANGED
    assert events[-1][1]["changed"] == ["bio", "skills"]
    own, changed = await put_profile(
        parts.repository,
        actor=actor,
        details=details(bio="New bio.", skills=["Runway"]),
        sensitive=SensitiveDetails(),
        today=TODAY,
    )
    assert changed == ["sensitive"] and own.sensitive.empty


async def test_publish_and_unpublish_are_idempotent(parts: Profiles) -> None:
    creator = new_id()
    actor = creator_actor(creator)
    with pytest.raises(ProfileNotFoundError):
        await publish_profile(parts.repository, actor=actor)
    await put_profile(parts.repository, actor=actor, details=details(), today=TODAY)
    own, changed = await publish_profile(parts.repository, actor=actor)
    assert own.published and changed and own.published_at is not None
    own, changed = await publish_profile(parts.repository, actor=actor)
    assert own.published and not changed
    own, changed = await unpublish_profile(parts.repository, actor=actor)
    assert not own.published and changed
    types = [t for t, _, _ in await stored(parts, creator)]
    assert types == [PROFILE_CREATED, PROFILE_PUBLISHED, PROFILE_UNPUBLISHED]
    assert (await get_own_profile(parts.repository, actor=actor)).published is False


async def test_only_the_creator_writes_their_profile(parts: Profiles) -> None:
    for actor in (Actor(id=new_id(), role="client"), Actor(id=new_id(), role="staff")):
        with pytest.raises(NotACreatorError):
            await put_profile(parts.repository, actor=actor, details=details(), today=TODAY)


async def test_after_the_key_is_shredded_the_profile_reads_erased(parts: Profiles) -> None:
    creator = new_id()
    actor = creator_actor(creator)
    await put_profile(
        parts.repository, actor=actor, details=details(), sensitive=sensitive(), today=TODAY
    )
    await parts.kernel.shred(f"subject:{creator}")
    profile = await parts.repository.get(CreatorProfile, profile_stream(creator))
    assert profile.erased and is_erased(profile.sensitive)
    with pytest.raises(ProfileErasedError):
        await get_own_profile(parts.repository, actor=actor)
    with pytest.raises(ProfileErasedError):
        await put_profile(parts.repository, actor=actor, details=details(), today=TODAY)
    with pytest.raises(ProfileErasedError):
        await publish_profile(parts.repository, actor=actor)


def test_the_changed_literal_lists_the_public_fields() -> None:
    assert set(PublicField.__args__) == set(PUBLIC_FIELDS)  # type: ignore[attr-defined]
