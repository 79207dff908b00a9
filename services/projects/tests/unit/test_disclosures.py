"""Disclosures: only for the three purposes the policy names; anything else is a distinct,
audited refusal; a permitted one is a `share` event for each subject concerned."""

from __future__ import annotations

import pytest

from mmgen.projects.domain.errors import (
    DisclosurePurposeRefusedError,
    DisclosureSubjectNotInProjectError,
)
from mmgen.projects.domain.events import Recipient
from mmgen.projects.testing import Wired, caller, in_memory, make_team

RECIPIENT = Recipient(type="payment_provider", name="PayCo Ltd")


@pytest.fixture
def wired() -> Wired:
    return in_memory()


@pytest.mark.parametrize(
    "purpose", ["sale", "marketing", "advertising", "analytics", "profiling", "support", ""]
)
async def test_any_other_purpose_is_refused_and_audited(wired: Wired, purpose: str) -> None:
    team = await make_team(wired)
    before = await wired.kernel.store.last_seq()
    with pytest.raises(DisclosurePurposeRefusedError) as refused:
        await wired.disclosures.create(
            team.owner,
            team.project_id,
            recipient=Recipient(type="controller", name="AdNetwork"),
            purpose=purpose,
            legal_basis="consent",
            categories=["contact"],
            subject_ids=[team.creator.actor_id],
        )
    assert refused.value.permitted == (
        "project_execution",
        "legal_compliance",
        "payment_processing",
    )
    (denial,) = wired.access_log.denials
    assert denial.reason == "disclosure_purpose_refused"
    assert (denial.status, denial.project_id) == (422, team.project_id)
    assert denial.actor_id == team.owner.actor_id
    assert await wired.kernel.store.last_seq() == before  # nothing shared, nothing recorded


async def test_a_permitted_disclosure_is_a_share_event_per_subject(wired: Wired) -> None:
    team = await make_team(wired)
    subjects = [team.creator.actor_id, team.owner.actor_id, team.creator.actor_id]
    view = await wired.disclosures.create(
        team.owner,
        team.project_id,
        recipient=RECIPIENT,
        purpose="payment_processing",
        legal_basis="contract",
        categories=["contact", "payment", "contact"],
        subject_ids=subjects,
    )
    assert view.subject_ids == [team.creator.actor_id, team.owner.actor_id]
    assert view.categories == ["contact", "payment"]
    events = [
        e
        for e in await wired.kernel.store.read_range(1, 100)
        if e.event_type == "projects.DataDisclosed"
    ]
    assert [e.subject_id for e in events] == view.subject_ids
    for event in events:
        assert event.action == "share"
        assert event.purpose == "payment_processing"
        assert event.actor is not None and event.actor.id == team.owner.actor_id
        assert event.resource.type == "disclosure"
        assert event.resource.id == view.disclosure_id
        assert list(event.categories) == ["contact", "payment"]  # exactly those disclosed
        assert event.data["recipient"] == {"type": "payment_provider", "name": "PayCo Ltd"}
        assert event.data["legal_basis"] == "contract"
        assert event.data["categories"] == ["contact", "payment"]
        assert event.data["subject_ids"] == view.subject_ids
    (row,) = await wired.disclosures_rm.of_subject(team.creator.actor_id, 10)
    assert row.recipient == RECIPIENT
    assert wired.access_log.denials == []


async def test_subjects_must_belong_to_the_project(wired: Wired) -> None:
    team = await make_team(wired)
    with pytest.raises(DisclosureSubjectNotInProjectError):
        await wired.disclosures.create(
            team.owner,
            team.project_id,
            recipient=RECIPIENT,
            purpose="legal_compliance",
            legal_basis="legal_obligation",
            categories=["project"],
            subject_ids=[caller("creator").actor_id],
        )
