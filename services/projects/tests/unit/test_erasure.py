"""The erasure participant over fakes: a member's messages and files read as erased for
everyone while others' stay intact; an anonymised project keeps only its facts."""

from __future__ import annotations

import uuid

import pytest

from mmgen.events.envelope import Envelope, Resource
from mmgen.events.erased import is_erased
from mmgen.projects.domain.errors import (
    FileErasedError,
    ProjectAnonymizedError,
    ProjectNotFoundError,
)
from mmgen.projects.domain.events import MemberRemoved, Recipient
from mmgen.projects.testing import SAMPLES, Team, Wired, in_memory, make_team, pieces
from mmgen.runtime.erasure import AnonymizeOrder, EraseOrder


@pytest.fixture
def wired() -> Wired:
    return in_memory()


def command(kind: str, subject: str | None = None) -> Envelope:
    return Envelope(
        event_type=f"retention.{kind}",
        schema_version=1,
        producer="retention",
        stream_id=f"request:{uuid.uuid4()}",
        stream_version=1,
        subject_id=subject,
        action="erase",
        resource=Resource(type="subject", id=subject or "project"),
    )


def erase_order(subject: str, held: frozenset[str] = frozenset()) -> EraseOrder:
    return EraseOrder(str(uuid.uuid4()), subject, held, command("EraseSubject", subject))


async def busy_team(wired: Wired) -> tuple[Team, str, str]:
    team = await make_team(wired)
    await wired.messages.post(team.owner, team.project_id, "owner: welcome")
    await wired.messages.post(team.creator, team.project_id, "creator: my phone is 555-0100")
    creator_file = await wired.files.upload(
        team.creator,
        team.project_id,
        filename="portfolio.png",
        content_type="image/png",
        body=pieces(SAMPLES["image/png"]),
    )
    owner_file = await wired.files.upload(
        team.owner,
        team.project_id,
        filename="brief.pdf",
        content_type="application/pdf",
        body=pieces(SAMPLES["application/pdf"]),
    )
    await wired.disclosures.create(
        team.owner,
        team.project_id,
        recipient=Recipient(type="payment_provider", name="PayCo"),
        purpose="payment_processing",
        legal_basis="contract",
        categories=["contact"],
        subject_ids=[team.creator.actor_id],
    )
    return team, creator_file.file_id, owner_file.file_id


async def test_erasing_a_member(wired: Wired) -> None:
    team, creator_file, owner_file = await busy_team(wired)
    subject = team.creator.actor_id
    outcome = await wired.erasure.erase_subject(erase_order(subject))
    assert outcome.keys_shredded == 1
    assert outcome.records_deleted == {"account": 1, "project": 1}
    assert outcome.records_anonymized == {"communication": 1, "files": 1, "project": 1}
    assert outcome.categories_held == []

    page = (await wired.messages.list(team.owner, team.project_id, limit=10)).value
    texts = {m.number: (m.text, m.author_id, m.erased) for m in page.items}
    assert texts[1] == ("owner: welcome", team.owner.actor_id, False)
    assert texts[2] == (None, None, True)
    files = (await wired.files.list(team.staff, team.project_id, limit=10)).value.items
    assert {f.file_id: f.erased for f in files} == {creator_file: True, owner_file: False}
    with pytest.raises(FileErasedError):
        await wired.files.download(team.owner, team.project_id, creator_file)
    assert await wired.chunks.read(creator_file, [0]) == []
    assert len(await wired.chunks.read(owner_file, [0])) == 1

    facts = (await wired.projects.get(team.owner, team.project_id)).value.facts
    assert subject not in [m.user_id for m in facts.members]
    with pytest.raises(ProjectNotFoundError):
        await wired.projects.get(team.creator, team.project_id)
    removed = (await wired.kernel.repository.load(team.project_id))[-1]
    assert isinstance(removed.data, MemberRemoved) and removed.data.reason == "erased"

    # In the event store itself their message and file name no longer decrypt.
    theirs = [
        e
        for e in await wired.kernel.repository.decode(await wired.kernel.store.read_range(1, 500))
        if e.envelope.owner == f"subject:{subject}"
    ]
    assert theirs and all(is_erased(e.personal) for e in theirs)

    footprint = await wired.erasure.footprint(subject)
    assert footprint.key_erased
    assert footprint.readable_personal_fields == 0
    assert footprint.total_records == 0
    assert await wired.disclosures_rm.count_of_subject(subject) == 0

    before = await wired.kernel.store.last_seq()
    again = await wired.erasure.erase_subject(erase_order(subject))
    assert (again.keys_shredded, again.records_deleted, again.records_anonymized) == (0, {}, {})
    assert await wired.kernel.store.last_seq() == before


async def test_the_footprint_before_erasure_counts_what_is_readable(wired: Wired) -> None:
    team, _, _ = await busy_team(wired)
    creator = await wired.erasure.footprint(team.creator.actor_id)
    assert creator.categories["communication"].readable_personal_fields == 1
    assert creator.categories["files"].readable_personal_fields == 2
    assert creator.categories["project"].records == 2  # a membership and a disclosure
    owner = await wired.erasure.footprint(team.owner.actor_id)
    assert owner.categories["project"].readable_personal_fields == 2  # title, requirements


async def test_a_hold_on_communication_keeps_the_key_and_the_messages(wired: Wired) -> None:
    team, creator_file, _ = await busy_team(wired)
    subject = team.creator.actor_id
    outcome = await wired.erasure.erase_subject(erase_order(subject, frozenset({"communication"})))
    assert outcome.keys_shredded == 0
    assert outcome.categories_held == ["communication"]
    page = (await wired.messages.list(team.owner, team.project_id, limit=10)).value
    assert {m.text for m in page.items} == {"owner: welcome", "creator: my phone is 555-0100"}
    with pytest.raises(FileErasedError):
        await wired.files.download(team.owner, team.project_id, creator_file)
    footprint = await wired.erasure.footprint(subject)
    assert footprint.categories["files"].readable_personal_fields == 0
    assert footprint.categories["communication"].readable_personal_fields == 1


async def test_erasing_an_owner_anonymises_their_projects(wired: Wired) -> None:
    team, _, _ = await busy_team(wired)
    outcome = await wired.erasure.erase_subject(erase_order(team.owner.actor_id))
    assert outcome.keys_shredded == 2  # their own key and the project's
    read = await wired.projects.get(team.creator, team.project_id)
    assert (read.value.title, read.value.requirements) == (None, None)
    assert read.value.facts.anonymized
    assert read.value.facts.status == "open"
    assert (await wired.erasure.footprint(team.owner.actor_id)).readable_personal_fields == 0


async def test_anonymising_a_project_keeps_its_facts_only(wired: Wired) -> None:
    team, creator_file, owner_file = await busy_team(wired)
    await wired.projects.change_status(team.owner, team.project_id, "in_progress")
    before = (await wired.projects.get(team.owner, team.project_id)).value.facts
    order = AnonymizeOrder(
        str(uuid.uuid4()), "project", team.project_id, command("AnonymizeResource")
    )
    outcome = await wired.erasure.anonymize_resource(order)
    assert outcome.keys_shredded == 1
    assert outcome.records_anonymized == {"communication": 2, "files": 2, "project": 1}
    after = (await wired.projects.get(team.owner, team.project_id)).value
    assert (after.title, after.requirements) == (None, None)
    assert after.facts.status == "in_progress"
    assert after.facts.created_at == before.created_at
    assert after.facts.status_changed_at == before.status_changed_at
    assert after.facts.budget_band == "5k_20k"
    assert (await wired.messages.list(team.owner, team.project_id, limit=10)).value.items == []
    for file_id in (creator_file, owner_file):
        assert await wired.chunks.read(file_id, [0]) == []
    (summary,) = (await wired.projects.list_mine(team.owner, limit=5)).value.items
    assert summary.title is None and summary.anonymized
    with pytest.raises(ProjectAnonymizedError):
        await wired.projects.update(team.owner, team.project_id, title="Back again")
    with pytest.raises(ProjectAnonymizedError):
        await wired.messages.post(team.owner, team.project_id, "still there?")
    # The same order run again still names the key it shredded; a new order shredded none.
    again = await wired.erasure.anonymize_resource(order)
    assert (again.keys_shredded, again.records_anonymized) == (1, {})
    later = AnonymizeOrder(
        order.request_id, "project", team.project_id, command("AnonymizeResource")
    )
    again = await wired.erasure.anonymize_resource(later)
    assert (again.keys_shredded, again.records_anonymized) == (0, {})
    # A replay of the whole store does not bring the thread back.
    for envelope in await wired.kernel.store.read_range(1, 500):
        await wired.projector.apply(envelope)
    assert (await wired.messages.list(team.owner, team.project_id, limit=10)).value.items == []


async def test_other_resource_types_are_not_ours(wired: Wired) -> None:
    order = AnonymizeOrder("r", "profile", str(uuid.uuid4()), command("AnonymizeResource"))
    outcome = await wired.erasure.anonymize_resource(order)
    assert (outcome.keys_shredded, outcome.records_anonymized) == (0, {})


async def test_export_holds_everything_readable_on_the_subject(wired: Wired) -> None:
    team, creator_file, _ = await busy_team(wired)
    export = await wired.erasure.export(team.creator.actor_id)
    assert export.service == "projects" and not export.erased
    records = export.records
    assert records["account"] == {"role": "creator", "status": "active"}
    assert records["memberships"] == [{"project_id": team.project_id, "role": "creator"}]
    assert [m["text"] for m in records["messages"]] == [{"text": "creator: my phone is 555-0100"}]
    assert [(f["file_id"], f["name"]) for f in records["files"]] == [
        (creator_file, {"filename": "portfolio.png"})
    ]
    assert [d["purpose"] for d in records["disclosures"]] == ["payment_processing"]
    kinds = {e.event_type for e in export.events}
    assert {"projects.MemberAdded", "projects.MessagePosted", "projects.FileUploaded"} <= kinds
    # The disclosure's `share` event, whose recipient the Art. 15 package names.
    (shared,) = [e for e in export.events if e.action == "share"]
    assert shared.event_type == "projects.DataDisclosed"
    assert shared.data["recipient"] == {"type": "payment_provider", "name": "PayCo"}
    assert shared.data["legal_basis"] == "contract"
    owner_export = await wired.erasure.export(team.owner.actor_id)
    (owned,) = owner_export.records["projects_owned"]
    assert owned["requirements"] == "Three models, one studio day"

    await wired.erasure.erase_subject(erase_order(team.creator.actor_id))
    after = await wired.erasure.export(team.creator.actor_id)
    assert after.erased
    assert after.records["messages"] == [] and after.records["account"] is None
