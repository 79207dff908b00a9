"""Erasure, export and footprint of a subject (DESIGN.md: every service handles `EraseSubject`).

Erasure deletes the subject's read models (account, email index — so the email can register
again as a new subject —, refresh tokens, throttle counter), shreds the subject's data key
(every event's personal part becomes unreadable: store, Kafka, backups), and records
`identity.SubjectErased` with counts. Categories under a legal hold are kept: identity seals
all of a subject's fields under one key, so a hold on any category it holds keeps the key,
closes the account instead, and says so in the event.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession

from mmgen.events.envelope import Actor, Envelope
from mmgen.events.erased import is_erased
from mmgen.events.errors import DuplicateEventIdError
from mmgen.events.mapper import NewEvent
from mmgen.identity.domain.events import FIELD_CATEGORIES, SubjectErased
from mmgen.identity.domain.model import ACTIVE, CLOSED, User
from mmgen.identity.service_layer.ports import Adapters

log = logging.getLogger(__name__)

ERASE_SUBJECT = "retention.EraseSubject"
ANONYMIZE_RESOURCE = "retention.AnonymizeResource"
#: Categories of personal data identity holds (all sealed under the subject's one key).
HELD_HERE = frozenset(FIELD_CATEGORIES.values())
_RESULT_NAMESPACE = uuid.UUID("6f1d7c55-3c1e-4f7e-9a57-3f0b1f1c2e11")


class Erasure:
    def __init__(self, adapters: Adapters) -> None:
        self.a = adapters

    async def handle_command(self, command: Envelope, session: AsyncClientSession | None) -> None:
        """Consumer entry point for `retention.commands` (idempotent on the command's id)."""
        if command.event_type == ERASE_SUBJECT:
            await self.erase_subject(command, session)
        elif command.event_type == ANONYMIZE_RESOURCE:
            # Identity owns no resource that can be anonymised on its own (accounts are subjects).
            log.info("AnonymizeResource ignored: identity holds no such resource")

    async def erase_subject(
        self, command: Envelope, session: AsyncClientSession | None = None
    ) -> SubjectErased:
        data = command.data
        subject_id = str(uuid.UUID(str(data.get("subject_id") or command.subject_id)))
        request_id = str(data.get("request_id") or command.event_id)
        held = sorted(HELD_HERE & set(data.get("categories_held") or []))
        owner = f"subject:{subject_id}"
        sealed = await self.a.subject_events.count_encrypted(subject_id)
        account = await self.a.accounts.get(subject_id)
        if held:
            # A hold keeps the key: close the account (tokens stop), keep the data readable.
            if account is not None:
                await self.a.accounts.set_status(subject_id, CLOSED)
            await self.a.refresh_tokens.revoke_user(subject_id)
            result = SubjectErased(
                request_id=request_id,
                subject_id=subject_id,
                key_shredded=False,
                events_made_unreadable=0,
                read_models_deleted=0,
                held_categories=held,
            )
        else:
            deleted = await self.a.accounts.delete_subject(subject_id, session)
            deleted += await self.a.refresh_tokens.delete_subject(subject_id, session)
            if account is not None and account.get("email_index"):
                deleted += await self.a.throttle.delete_keys(
                    [f"acct:{account['email_index']}"], session
                )
            already = await self.a.keystore.is_erased(owner)
            shredded = await self.a.keystore.shred(owner)
            result = SubjectErased(
                request_id=request_id,
                subject_id=subject_id,
                key_shredded=shredded or already,
                events_made_unreadable=0 if already else sealed,
                read_models_deleted=deleted,
            )
        event = NewEvent(
            result,
            subject_id=subject_id,
            actor=Actor(**command.actor.model_dump()) if command.actor else None,
            purpose=command.purpose or "legal_compliance",
            causation_id=command.event_id,
            correlation_id=command.correlation_id or request_id,
            # Derived from the command, so a redelivered command cannot record a second result.
            event_id=str(uuid.uuid5(_RESULT_NAMESPACE, command.event_id)),
        )
        try:
            version = await self.a.store.stream_version(subject_id)
            await self.a.repository.append(subject_id, version, [event])
        except DuplicateEventIdError:
            log.info("SubjectErased for command %s was recorded before", command.event_id)
        return result

    # --- what is held on a subject ---------------------------------------------------------------

    async def export(self, subject_id: str) -> dict[str, Any]:
        """Everything identity holds on the subject, decrypted, machine-readable."""
        envelopes = await self.a.subject_events.of(subject_id)
        events = await self.a.repository.decode(envelopes)
        user = await self.a.repository.get(User, subject_id)
        account_doc = await self.a.accounts.get(subject_id)
        account: dict[str, Any] | None = None
        if user is not None and user.registered:
            account = {
                "user_id": subject_id,
                "role": user.role,
                "status": user.status,
                "registered_by": user.registered_by,
                "email": _plain(user.email),
                "name": _plain(user.name),
                "phone": _plain(user.phone),
                "business": _plain(user.business),
                "password": (
                    {"erased": True}
                    if is_erased(user.password_hash)
                    else {"held": True, "kind": "argon2id hash", "exported": False}
                ),
            }
        return {
            "service": "identity",
            "subject_id": subject_id,
            "generated_at": datetime.now(UTC).isoformat(),
            "account": account,
            "read_models": {
                "account_record": bool(account_doc),
                "refresh_tokens": await self.a.refresh_tokens.count_subject(subject_id),
            },
            "events": [
                {
                    "event_id": e.event_id,
                    "event_type": e.event_type,
                    "occurred_at": e.occurred_at.isoformat(),
                    "action": e.envelope.action,
                    "actor": e.actor.model_dump() if e.actor else None,
                    "purpose": e.envelope.purpose,
                    "categories": list(e.envelope.categories),
                    "data": e.envelope.data,
                    "personal": _personal(e.personal),
                }
                for e in events
            ],
        }

    async def footprint(self, subject_id: str) -> dict[str, Any]:
        """Per category: records held and personal fields still readable (zero after erasure)."""
        envelopes = await self.a.subject_events.of(subject_id)
        records: dict[str, int] = defaultdict(int)
        readable: dict[str, int] = defaultdict(int)
        owner = f"subject:{subject_id}"
        for envelope in envelopes:
            for category in envelope.categories:
                records[category] += 1
            if envelope.pii is None or envelope.pii.owner != owner:
                continue
            event = await self.a.repository.mapper.to_domain(envelope)
            if event.personal is None or is_erased(event.personal):
                continue
            for name, value in event.personal.model_dump().items():
                if value is not None:
                    readable[FIELD_CATEGORIES.get(name, "contact")] += 1
        accounts = await self.a.accounts.count_subject(subject_id)
        sessions = await self.a.refresh_tokens.count_subject(subject_id)
        if accounts or sessions:
            records["account"] += accounts + sessions
        categories = {
            name: {
                "records": records.get(name, 0),
                "readable_personal_fields": readable.get(name, 0),
            }
            for name in sorted(set(records) | set(readable))
        }
        return {
            "service": "identity",
            "subject_id": subject_id,
            "categories": categories,
            "readable_personal_fields": sum(readable.values()),
            "key_erased": await self.a.keystore.is_erased(owner),
        }


def _plain(value: Any) -> Any:
    if is_erased(value):
        return {"erased": True}
    if hasattr(value, "model_dump"):
        return value.model_dump()
    return value


def _personal(personal: Any) -> Any:
    if personal is None:
        return None
    if is_erased(personal):
        return {"erased": True}
    fields = personal.model_dump(mode="json")
    if "password_hash" in fields:
        fields["password_hash"] = {"held": True, "exported": False}
    return fields


__all__ = ["ACTIVE", "ERASE_SUBJECT", "Erasure"]
