"""Known users: which accounts exist with which role, learnt from identity's events.

Adding a member checks that the user exists with the role asked for, without calling
identity: this projection of `identity.events` keeps `{user id → role, status}`. Identity's
public data is the role (names and emails travel encrypted under identity's keys, which this
service never holds). A closed account can no longer join a project; an erased one leaves a
tombstone. Every application is idempotent, so redeliveries and replays change nothing.
"""

from __future__ import annotations

import logging

from mmgen.events.envelope import Envelope
from mmgen.events.revocation import ACCOUNT_CLOSED, SUBJECT_ERASED
from mmgen.projects.adapters.ports import KnownUsers

log = logging.getLogger(__name__)

USER_REGISTERED = "identity.UserRegistered"
#: Identity's event types this projection reads (the contract with identity).
IDENTITY_EVENT_TYPES = frozenset({USER_REGISTERED, ACCOUNT_CLOSED, SUBJECT_ERASED})


def _user_id(envelope: Envelope) -> str | None:
    subject = envelope.subject_id or envelope.data.get("subject_id")
    return str(subject) if subject else None


class KnownUsersProjector:
    def __init__(self, users: KnownUsers) -> None:
        self.users = users

    async def apply(self, envelope: Envelope) -> None:
        """Apply one of identity's events (others are ignored)."""
        if envelope.producer != "identity" or envelope.event_type not in IDENTITY_EVENT_TYPES:
            return
        user_id = _user_id(envelope)
        if user_id is None:
            log.warning("%s %s names no subject", envelope.event_type, envelope.event_id)
            return
        if envelope.event_type == USER_REGISTERED:
            role = envelope.data.get("role")
            if not isinstance(role, str) or not role:
                log.warning("UserRegistered %s carries no role", envelope.event_id)
                return
            await self.users.register(user_id, role)
        elif envelope.event_type == ACCOUNT_CLOSED or envelope.data.get("key_shredded") is False:
            # Identity keeps a held account's data (closed, not erased): it can join nothing.
            await self.users.close(user_id)
        else:
            await self.users.forget(user_id)
