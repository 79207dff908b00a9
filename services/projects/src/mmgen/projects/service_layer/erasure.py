"""The projects service's erasure participant: erase a subject, anonymise a project, export,
footprint (the shared contract; the runtime records the outcomes as events).

**Erase a subject.** Their key (`subject:<id>`) is shredded: the texts of their messages and
the names and contents of their files become unreadable everywhere — event store, Kafka,
read models — and read as erased for everyone, while other people's messages stay intact.
The read models drop their ciphertext and their id, their files' chunks are deleted, they
leave every project they were a member of (a `MemberRemoved` event each, so a rebuild does
not bring them back), their ids leave the disclosures index and the known-users row
becomes a tombstone. The projects they own are anonymised (the project key is shredded:
title and requirements were theirs), keeping status, dates and budget band.

Held categories are kept: `project` keeps memberships, owned projects and disclosures;
`communication` or `files` keep the subject's key — both are sealed under it — and that
category's rows (the other category's rows and file chunks are still removed).

**Anonymise a project.** Its key (`project:<id>`) is shredded — title and requirements are
gone — and its thread is removed from the read models (messages, file metadata and chunks).
Status, dates, budget band and membership remain. Message texts stay sealed under their
authors' keys in the event store until those authors are erased.

Each step is idempotent: a redelivered order finds nothing left to do.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from mmgen.events.envelope import Actor, Envelope
from mmgen.events.erased import is_erased
from mmgen.events.keys import Keystore
from mmgen.events.mapper import DomainEvent
from mmgen.events.repository import EventSourcedRepository
from mmgen.projects.adapters.file_content import EncryptedFileContent
from mmgen.projects.adapters.personal import PersonalReader
from mmgen.projects.adapters.ports import (
    DisclosuresIndex,
    FilesIndex,
    KnownUsers,
    MessagesIndex,
    ProjectsReadModel,
)
from mmgen.projects.adapters.projection import ProjectsProjector
from mmgen.projects.domain.model import Project
from mmgen.projects.service_layer.changes import change_project
from mmgen.runtime.contract import (
    ExportedActor,
    ExportedEvent,
    Footprint,
    SubjectExport,
    owner_of_subject,
)
from mmgen.runtime.erasure import (
    AnonymizationOutcome,
    AnonymizeOrder,
    EraseOrder,
    ErasureOutcome,
)

SERVICE = "projects"
#: Categories of personal data this service holds.
HELD_HERE = frozenset({"project", "communication", "files", "account"})
#: Categories sealed under the subject's own key (a hold on either keeps the key).
UNDER_SUBJECT_KEY = frozenset({"communication", "files"})
ERASURE_PURPOSE = "legal_compliance"


subject_owner = owner_of_subject


def project_owner(project_id: str) -> str:
    return f"project:{project_id}"


def _personal_json(personal: Any) -> dict[str, Any] | None:
    if personal is None:
        return None
    if is_erased(personal):
        return {"erased": True}
    dumped: dict[str, Any] = personal.model_dump(mode="json")
    return dumped


def _exported(event: DomainEvent[Any]) -> ExportedEvent:
    envelope = event.envelope
    return ExportedEvent(
        event_id=event.event_id,
        event_type=event.event_type,
        occurred_at=event.occurred_at,
        action=envelope.action,
        actor=(
            ExportedActor(id=envelope.actor.id, role=envelope.actor.role)
            if envelope.actor
            else None
        ),
        purpose=envelope.purpose,
        categories=list(envelope.categories),
        data=dict(envelope.data),
        personal=_personal_json(event.personal),
    )


def _command_actor(command: Envelope) -> Actor | None:
    return Actor(**command.actor.model_dump()) if command.actor else None


class ProjectsErasure:
    """The `ErasureParticipant` of the projects service."""

    def __init__(
        self,
        repo: EventSourcedRepository,
        keystore: Keystore,
        projects: ProjectsReadModel,
        messages: MessagesIndex,
        files: FilesIndex,
        content: EncryptedFileContent,
        known_users: KnownUsers,
        disclosures: DisclosuresIndex,
        projector: ProjectsProjector,
        *,
        max_records: int = 10_000,
    ) -> None:
        self.repo = repo
        self.keystore = keystore
        self.projects = projects
        self.messages = messages
        self.files = files
        self.content = content
        self.known_users = known_users
        self.disclosures = disclosures
        self.projector = projector
        self.reader = PersonalReader(repo.mapper, repo.store)
        self.max_records = max_records

    # --- erasure ----------------------------------------------------------------------------

    async def erase_subject(self, order: EraseOrder) -> ErasureOutcome:
        subject = order.subject_id
        held = set(order.categories_held) & HELD_HERE
        deleted: Counter[str] = Counter()
        anonymized: Counter[str] = Counter()
        shredded = 0
        if "project" not in held:
            for project_id, relation in (await self.projects.relations_of(subject)).items():
                if relation == "owner":
                    shredded += int(
                        await self.keystore.shred(
                            project_owner(project_id), by=order.command.event_id
                        )
                    )
                    anonymized["project"] += int(await self.projects.anonymize(project_id))
                else:
                    await self._leave(project_id, subject, order.command)
                    deleted["project"] += 1
            anonymized["project"] += await self.disclosures.forget_subject(subject)
        if "communication" not in held:
            anonymized["communication"] += await self.messages.erase_author(subject)
        if "files" not in held:
            erased_files = await self.files.erase_uploader(subject)
            for file_id in erased_files:
                await self.content.delete(file_id)
            anonymized["files"] += len(erased_files)
        if not held & UNDER_SUBJECT_KEY:
            shredded += int(
                await self.keystore.shred(subject_owner(subject), by=order.command.event_id)
            )
        if "account" not in held:
            deleted["account"] += int(await self.known_users.forget(subject))
        return ErasureOutcome(
            keys_shredded=shredded,
            records_deleted={k: v for k, v in sorted(deleted.items()) if v},
            records_anonymized={k: v for k, v in sorted(anonymized.items()) if v},
            categories_held=sorted(held),
        )

    async def _leave(self, project_id: str, subject: str, command: Envelope) -> None:
        def remove(project: Project) -> None:
            if subject in project.members:
                project.remove_member(
                    subject,
                    actor=_command_actor(command),
                    reason="erased",
                    purpose=ERASURE_PURPOSE,
                    causation_id=command.event_id,
                )

        await change_project(self.repo, self.projector, project_id, remove)

    async def anonymize_resource(self, order: AnonymizeOrder) -> AnonymizationOutcome:
        if order.resource_type != "project":
            return AnonymizationOutcome(keys_shredded=0)
        project_id = order.resource_id
        shredded = int(
            await self.keystore.shred(project_owner(project_id), by=order.command.event_id)
        )
        anonymized: Counter[str] = Counter()
        anonymized["project"] += int(await self.projects.anonymize(project_id))
        anonymized["communication"] += await self.messages.delete_project(project_id)
        file_ids = await self.files.delete_project(project_id)
        for file_id in file_ids:
            await self.content.delete(file_id)
        anonymized["files"] += len(file_ids)
        return AnonymizationOutcome(
            keys_shredded=shredded,
            records_anonymized={k: v for k, v in sorted(anonymized.items()) if v},
        )

    # --- what is held -----------------------------------------------------------------------

    async def export(self, subject_id: str) -> SubjectExport:
        """Everything held on the subject, decrypted where still readable (Art. 15 / 20).

        File contents are not inlined (they can be 25 MiB each); their metadata is, and each
        file can be downloaded by its id.
        """
        relations = await self.projects.relations_of(subject_id)
        owned: list[dict[str, Any]] = []
        memberships: list[dict[str, Any]] = []
        events: list[ExportedEvent] = []
        for project_id, relation in sorted(relations.items()):
            stream = await self.repo.load(project_id)
            if relation == "owner":
                project = Project(project_id)
                for stored in stream:
                    project.apply(stored)
                owned.append(_owned_record(project))
                events.extend(_exported(e) for e in stream)
            else:
                memberships.append({"project_id": project_id, "role": relation})
                events.extend(_exported(e) for e in stream if e.subject_id == subject_id)
        messages = []
        for row in await self.messages.of_author(subject_id, self.max_records):
            event = await self._event(row.event_id)
            if event is not None:
                events.append(_exported(event))
            messages.append(
                {
                    "message_id": row.message_id,
                    "project_id": row.project_id,
                    "number": row.number,
                    "posted_at": row.posted_at.isoformat(),
                    "text": _personal_json(event.personal) if event else {"erased": True},
                }
            )
        files = []
        for file_row in await self.files.of_uploader(subject_id, self.max_records):
            event = await self._event(file_row.event_id)
            if event is not None:
                events.append(_exported(event))
            files.append(
                {
                    "file_id": file_row.file_id,
                    "project_id": file_row.project_id,
                    "content_type": file_row.content_type,
                    "size": file_row.size,
                    "uploaded_at": file_row.uploaded_at.isoformat(),
                    "name": _personal_json(event.personal) if event else {"erased": True},
                }
            )
        disclosures = []
        for d in await self.disclosures.of_subject(subject_id, self.max_records):
            disclosures.append(
                {
                    "disclosure_id": d.disclosure_id,
                    "project_id": d.project_id,
                    "recipient": d.recipient.model_dump(),
                    "purpose": d.purpose,
                    "legal_basis": d.legal_basis,
                    "categories": list(d.categories),
                    "disclosed_at": d.disclosed_at.isoformat(),
                }
            )
            # The `share` event itself (its own stream, one event per subject): the Art. 15
            # package names a disclosure's recipient from the events of the exports.
            stream = await self.repo.load(f"disclosure:{d.disclosure_id}")
            events.extend(_exported(e) for e in stream if e.subject_id == subject_id)
        user = await self.known_users.get(subject_id)
        return SubjectExport(
            service=SERVICE,
            subject_id=subject_id,
            generated_at=datetime.now(UTC),
            erased=await self.keystore.is_erased(subject_owner(subject_id)),
            records={
                "account": (
                    {"role": user.role, "status": user.status}
                    if user is not None and user.status != "erased"
                    else None
                ),
                "projects_owned": owned,
                "memberships": memberships,
                "messages": messages,
                "files": files,
                "disclosures": disclosures,
            },
            events=events,
        )

    async def _event(self, event_id: str) -> DomainEvent[Any] | None:
        envelope = await self.repo.store.get(event_id)
        if envelope is None:
            return None
        (event,) = await self.repo.decode([envelope])
        return event

    async def footprint(self, subject_id: str) -> Footprint:
        """Per category: records held on the subject and personal fields still readable.

        The reads are independent and made at once: retention waits on this answer before it
        can call an erasure verified, and on a busy database their sum is what it would wait."""
        key_erased, relations, disclosures, message_rows, file_rows, user = await asyncio.gather(
            self.keystore.is_erased(subject_owner(subject_id)),
            self.projects.relations_of(subject_id),
            self.disclosures.count_of_subject(subject_id),
            self.messages.count_of_author(subject_id),
            self.files.count_of_uploader(subject_id),
            self.known_users.get(subject_id),
        )
        owned = [pid for pid, relation in relations.items() if relation == "owner"]
        rows = [row for row in await self.projects.many(owned) if not row.anonymized]
        project_erased = await asyncio.gather(
            *(self.keystore.is_erased(project_owner(row.project_id)) for row in rows)
        )
        readable_project = 2 * project_erased.count(False)  # title and requirements
        account_rows = int(user is not None and user.status != "erased")
        return Footprint.of(
            SERVICE,
            subject_id,
            key_erased=key_erased,
            records={
                "project": len(relations) + disclosures,
                "communication": message_rows,
                "files": file_rows,
                "account": account_rows,
            },
            readable={
                "project": readable_project,
                "communication": 0 if key_erased else message_rows,
                # the name and the content of each file
                "files": 0 if key_erased else 2 * file_rows,
                "account": 0,
            },
        )


def _owned_record(project: Project) -> dict[str, Any]:
    return {
        "project_id": project.id,
        "status": project.status,
        "budget_band": project.budget_band,
        "deadline": project.deadline.isoformat() if project.deadline else None,
        "created_at": project.created_at.isoformat() if project.created_at else None,
        "title": {"erased": True} if is_erased(project.title) else project.title,
        "requirements": (
            {"erased": True} if is_erased(project.requirements) else project.requirements
        ),
        "members": [{"user_id": u, "role": r} for u, r in sorted(project.members.items())],
    }
