"""The accounts projection: identity's events applied to the accounts read model.

The same `apply_event` runs in two places: right after a request handler appended its events
(so the caller reads its own writes), and in the runtime's catch-up projector, which applies
every stored event in order from its checkpoint. The second is what repairs a crash between
an append and the read-model write — an `AccountClosed` stored but not yet applied leaves the
account active only until the projector reaches it — and what rebuilds the read model from the
store. Every write is idempotent (see `mmgen.identity.adapters.accounts`).
"""

from __future__ import annotations

from typing import Any

from mmgen.events.envelope import Envelope
from mmgen.events.erased import is_erased
from mmgen.events.mapper import DomainEvent, EventMapper
from mmgen.events.revocation import ACCOUNT_CLOSED, NOT_BEFORE_EVENT_TYPES, SUBJECT_ERASED
from mmgen.identity.adapters.accounts import AccountsReadModel
from mmgen.identity.adapters.hashing import BlindIndex
from mmgen.identity.domain.events import (
    AccountClosed,
    EmailCorrected,
    PasswordChanged,
    TotpActivated,
    UserRegistered,
)
from mmgen.runtime.contract import SubjectErasedData

PROJECTION = "accounts"
#: The event types that change the read model (the others are skipped without decrypting).
APPLIED = frozenset(
    {
        "identity.UserRegistered",
        "identity.EmailCorrected",
        ACCOUNT_CLOSED,
        SUBJECT_ERASED,
        *NOT_BEFORE_EVENT_TYPES,
    }
)


class AccountsProjection:
    def __init__(
        self, accounts: AccountsReadModel, mapper: EventMapper, blind_index: BlindIndex
    ) -> None:
        self.accounts = accounts
        self.mapper = mapper
        self.blind_index = blind_index

    async def apply(self, envelope: Envelope) -> None:
        """The runtime's projector: one stored event."""
        if envelope.event_type in APPLIED:
            await self.apply_event(await self.mapper.to_domain(envelope))

    async def apply_events(self, events: list[DomainEvent[Any]]) -> None:
        """A request handler: the events it has just appended."""
        for event in events:
            await self.apply_event(event)

    async def apply_event(self, event: DomainEvent[Any]) -> None:
        user_id, version, personal = event.stream_id, event.stream_version, event.personal
        match event.data:
            case UserRegistered(role=role) if not is_erased(personal):
                await self.accounts.registered(
                    user_id,
                    role=role,
                    email_index=self.blind_index(personal.email),
                    version=version,
                    created_at=event.occurred_at,
                )
            case EmailCorrected() if not is_erased(personal):
                await self.accounts.email_changed(
                    user_id, email_index=self.blind_index(personal.email), version=version
                )
            case AccountClosed():
                await self.accounts.closed(user_id, version=version)
            case (
                PasswordChanged(tokens_not_before=not_before)
                | TotpActivated(tokens_not_before=not_before)
            ):
                # Earlier tokens of the account stop working at identity too (AccountDenylist).
                if not_before is None:
                    not_before = int(event.occurred_at.timestamp()) + 1
                await self.accounts.credentials_changed(user_id, not_before=not_before)
            case SubjectErasedData(subject_id=subject, categories_held=held) if held:
                # A legal hold kept the key: the account is closed, not removed.
                await self.accounts.closed(subject, version=None)
            case SubjectErasedData(subject_id=subject):
                await self.accounts.delete_subject(subject)
            case _:
                # A registration or correction whose key was shredded: an erased account,
                # whose records the erasure removed and which must not come back.
                pass
