"""identity's part of the erasure contract: erase a subject, export and count what it holds.

Erasure deletes the subject's records (account, email reservations — so the email can register
again as a new subject —, refresh tokens, throttle counter) — with the order's session when
it has one (the runtime erases before the answer's transaction, without one) — and shreds
the subject's data key: every event's personal part becomes unreadable in the store, on Kafka
and in backups. identity seals all of a subject's fields under that one key, so
a legal hold on any category it holds keeps the key: the account is closed instead
(`AccountClosed` by `retention`) and the answer names the held categories. The runtime records
the answer (`identity.SubjectErased`) and audits every export (`identity.SubjectExported`).
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from mmgen.events.erased import is_erased
from mmgen.events.keys import Keystore
from mmgen.events.mapper import DomainEvent
from mmgen.events.repository import EventSourcedRepository
from mmgen.identity.adapters.accounts import AccountsReadModel
from mmgen.identity.adapters.mail import MailOutbox
from mmgen.identity.adapters.one_time import OneTimeUses
from mmgen.identity.adapters.sessions import RefreshTokenStore
from mmgen.identity.adapters.subject_events import SubjectEvents
from mmgen.identity.adapters.throttle import LoginThrottle
from mmgen.identity.domain.errors import AccountNotActiveError, UserNotFoundError
from mmgen.identity.domain.events import FIELD_CATEGORIES
from mmgen.identity.domain.model import User
from mmgen.identity.service_layer.accounts import Accounts
from mmgen.platform.auth.principal import ProcessingPurpose
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

log = logging.getLogger(__name__)

SERVICE = "identity"
#: Categories of personal data identity holds (all sealed under the subject's one key).
HELD_HERE = frozenset(FIELD_CATEGORIES.values())
#: The most events one export carries (`events_truncated` says when there were more).
EXPORT_MAX_EVENTS = 10_000


class IdentityErasure:
    """The `ErasureParticipant` of identity."""

    def __init__(
        self,
        *,
        repository: EventSourcedRepository,
        keystore: Keystore,
        accounts: Accounts,
        account_records: AccountsReadModel,
        refresh_tokens: RefreshTokenStore,
        throttle: LoginThrottle,
        subject_events: SubjectEvents,
        mail_outbox: MailOutbox | None = None,
        one_time_uses: OneTimeUses | None = None,
    ) -> None:
        self.repository = repository
        self.keystore = keystore
        self.accounts = accounts
        self.account_records = account_records
        self.refresh_tokens = refresh_tokens
        self.throttle = throttle
        self.subject_events = subject_events
        self.mail_outbox = mail_outbox
        self.one_time_uses = one_time_uses

    async def erase_subject(self, order: EraseOrder) -> ErasureOutcome:
        subject = order.subject_id
        held = sorted(HELD_HERE & order.categories_held)
        if held:
            await self._close_for_hold(order)
            return ErasureOutcome(categories_held=held)
        account = await self.account_records.get(subject)
        deleted: Counter[str] = Counter()
        deleted["account"] += await self.account_records.delete_subject(subject, order.session)
        deleted["security"] += await self.refresh_tokens.delete_subject(subject, order.session)
        if account is not None:
            throttle_key = f"acct:{account.email_index}"
            deleted["security"] += await self.throttle.delete_keys([throttle_key], order.session)
        if self.mail_outbox is not None:  # mail waiting to be sent holds the address in clear
            deleted["contact"] += await self.mail_outbox.delete_subject(subject, order.session)
        if self.one_time_uses is not None:
            deleted["security"] += await self.one_time_uses.delete_subject(subject, order.session)
        shredded = await self.keystore.shred(owner_of_subject(subject), by=order.command.event_id)
        return ErasureOutcome(
            keys_shredded=1 if shredded else 0,
            records_deleted={category: n for category, n in deleted.items() if n},
            # Made unreadable by this shred (a second request finds nothing left to shred).
            records_anonymized=await self.subject_events.sealed(subject) if shredded else {},
        )

    async def _close_for_hold(self, order: EraseOrder) -> None:
        try:
            await self.accounts.close(
                order.subject_id,
                order.command.actor,
                closed_by="retention",
                purpose=order.command.purpose or ProcessingPurpose.legal_compliance.value,
                causation_id=order.command.event_id,
            )
        except (UserNotFoundError, AccountNotActiveError):
            # Closed or never registered: still, no session of the subject may go on.
            await self.refresh_tokens.revoke_user(order.subject_id)

    async def anonymize_resource(self, order: AnonymizeOrder) -> AnonymizationOutcome:
        """identity owns no resource that can be anonymised on its own (accounts are subjects)."""
        log.info("AnonymizeResource %s: identity holds no such resource", order.resource_type)
        return AnonymizationOutcome()

    # --- what is held on a subject -------------------------------------------------------------

    async def export(self, subject_id: str) -> SubjectExport:
        """Everything identity holds on the subject, decrypted (never the password hash)."""
        envelopes = await self.subject_events.of(subject_id, limit=EXPORT_MAX_EVENTS + 1)
        events = await self.repository.decode(envelopes[:EXPORT_MAX_EVENTS])
        records: dict[str, Any] = {}
        user = await self.repository.get(User, subject_id)
        if user is not None and user.registered:
            records["account"] = _account(user)
        account = await self.account_records.get(subject_id)
        sessions = await self.refresh_tokens.count_subject(subject_id)
        if account is not None or sessions:
            records["read_models"] = {
                "account_record": account is not None,
                "refresh_tokens": sessions,
            }
        return SubjectExport(
            service=SERVICE,
            subject_id=subject_id,
            generated_at=datetime.now(UTC),
            erased=await self.keystore.is_erased(owner_of_subject(subject_id)),
            records=records,
            events=[_exported(event) for event in events],
            events_truncated=len(envelopes) > EXPORT_MAX_EVENTS,
        )

    async def footprint(self, subject_id: str) -> Footprint:
        """Per category: records held and personal values still readable (zero after erasure)."""
        owner = owner_of_subject(subject_id)
        records: Counter[str] = Counter()
        readable: Counter[str] = Counter()
        for envelope in await self.subject_events.of(subject_id):
            records.update(envelope.categories)
            if envelope.pii is None or envelope.pii.owner != owner:
                continue
            personal = (await self.repository.mapper.to_domain(envelope)).personal
            if personal is None or is_erased(personal):
                continue
            for name, value in personal.model_dump().items():
                if value is not None:
                    readable[FIELD_CATEGORIES.get(name, "contact")] += 1
        records["account"] += await self.account_records.count_subject(subject_id)
        records["account"] += await self.refresh_tokens.count_subject(subject_id)
        return Footprint.of(
            SERVICE,
            subject_id,
            key_erased=await self.keystore.is_erased(owner),
            records={category: n for category, n in records.items() if n},
            readable=dict(readable),
        )


def _account(user: User) -> dict[str, Any]:
    return {
        "user_id": user.id,
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


def _exported(event: DomainEvent[Any]) -> ExportedEvent:
    envelope = event.envelope
    actor = envelope.actor
    return ExportedEvent(
        event_id=envelope.event_id,
        event_type=envelope.event_type,
        occurred_at=envelope.occurred_at,
        action=envelope.action,
        actor=ExportedActor(id=actor.id, role=actor.role) if actor else None,
        purpose=envelope.purpose,
        categories=list(envelope.categories),
        data=dict(envelope.data),
        personal=_personal(event.personal),
    )


def _plain(value: Any) -> Any:
    if is_erased(value):
        return {"erased": True}
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return value


def _personal(personal: Any) -> dict[str, Any] | None:
    if personal is None:
        return None
    if is_erased(personal):
        return {"erased": True}
    fields: dict[str, Any] = personal.model_dump(mode="json")
    # Credentials are held but never exported: an export must not hand out a way in.
    for credential in ("password_hash", "secret", "recovery_code_hashes"):
        if credential in fields:
            fields[credential] = {"held": True, "exported": False}
    return fields
