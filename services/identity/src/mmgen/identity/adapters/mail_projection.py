"""The mail the account events call for, made from the events themselves.

The runtime's projector runs `apply` on every stored event, in order, from a checkpoint: an
event that calls for a mail puts one message into the outbox, keyed by the event's id (so a
re-applied event queues nothing twice), and the sender is woken. Because the message — its
one-time token included (`mail_tokens`) — is derived from the stored event, a crash after the
append and before the mail loses nothing: the projector reaches the event at the next start.
Events older than their mail's use (a token expired, a notice a day old) queue nothing, so a
rebuilt checkpoint does not mail everyone again.

| event | mail |
|---|---|
| `UserRegistered` (by the user) | a verification token for the address |
| `EmailCorrected` | a verification token for the new address |
| `RegistrationAttempted` | a notice to the owner of the address someone tried to register |
| `PasswordResetRequested` | a password-reset token |
| `PasswordChanged` | a notice to the owner |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mmgen.events.envelope import Envelope
from mmgen.events.erased import is_erased
from mmgen.events.mapper import DomainEvent, EventMapper
from mmgen.events.repository import EventSourcedRepository
from mmgen.identity.adapters.mail import MailMessage, MailOutbox
from mmgen.identity.adapters.mail_tokens import Kind, OneTimeToken, OneTimeTokens
from mmgen.identity.domain.events import (
    EmailCorrected,
    PasswordChanged,
    PasswordResetRequested,
    RegistrationAttempted,
    UserRegistered,
)
from mmgen.identity.domain.model import User

PROJECTION = "mail"
MAILED = frozenset(
    {
        "identity.UserRegistered",
        "identity.EmailCorrected",
        "identity.RegistrationAttempted",
        "identity.PasswordResetRequested",
        "identity.PasswordChanged",
    }
)
NOTICE_MAX_AGE = timedelta(days=1)


@dataclass(frozen=True)
class MailPolicy:
    verify_ttl: timedelta
    reset_ttl: timedelta
    #: Where a link points (the web app's page that posts the token); None: the token only.
    link_base_url: str | None = None
    service_name: str = "Multimedia Gen"


class MailProjection:
    def __init__(
        self,
        *,
        mapper: EventMapper,
        repository: EventSourcedRepository,
        outbox: MailOutbox,
        tokens: OneTimeTokens,
        policy: MailPolicy,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self.mapper = mapper
        self.repository = repository
        self.outbox = outbox
        self.tokens = tokens
        self.policy = policy
        self.wake = wake

    async def apply(self, envelope: Envelope) -> None:
        if envelope.event_type in MAILED:
            await self.apply_event(await self.mapper.to_domain(envelope))

    async def apply_events(self, events: list[DomainEvent[Any]]) -> None:
        """A request handler's own events: queued at once rather than at the projector's turn."""
        for event in events:
            if event.event_type in MAILED:
                await self.apply_event(event)

    async def apply_event(self, event: DomainEvent[Any]) -> None:
        message = await self._message(event)
        if message is not None:
            await self.outbox.add(message)
            self.wake()

    async def _message(self, event: DomainEvent[Any]) -> MailMessage | None:
        now, personal = datetime.now(UTC), event.personal
        match event.data:
            case UserRegistered(registered_by="self") if not is_erased(personal):
                return self._token_mail(event, "verify", personal.email, now)
            case EmailCorrected() if not is_erased(personal):
                return self._token_mail(event, "verify", personal.email, now)
            case PasswordResetRequested():
                email = await self._current_email(event.subject_id)
                return None if email is None else self._token_mail(event, "reset", email, now)
            case RegistrationAttempted() | PasswordChanged():
                if event.occurred_at + NOTICE_MAX_AGE < now:
                    return None
                email = await self._current_email(event.subject_id)
                if email is None:
                    return None
                notice = (
                    REGISTERED_AGAIN
                    if isinstance(event.data, RegistrationAttempted)
                    else (PASSWORD_CHANGED)
                )
                return self._mail(event, email, *notice)
            case _:
                return None

    async def _current_email(self, user_id: str | None) -> str | None:
        if user_id is None:
            return None
        user = await self.repository.get(User, user_id)
        if user is None or not user.active or is_erased(user.email):
            return None
        return str(user.email)

    def _token_mail(
        self, event: DomainEvent[Any], kind: Kind, email: str, now: datetime
    ) -> MailMessage | None:
        ttl = self.policy.verify_ttl if kind == "verify" else self.policy.reset_ttl
        expires = event.occurred_at + ttl
        if expires <= now:
            return None
        token = self.tokens.issue(
            OneTimeToken(kind, event.stream_id, event.stream_version, expires)
        )
        subject, intro, route = VERIFY if kind == "verify" else RESET
        link = ""
        if self.policy.link_base_url:
            page = "verify-email" if kind == "verify" else "reset-password"
            link = f"\nOr open: {self.policy.link_base_url.rstrip('/')}/{page}#token={token}\n"
        minutes = int(ttl.total_seconds() // 60)
        text = (
            f"{intro}\n\nYour one-time token (valid {minutes} minutes, once):\n\n"
            f"token: {token}\n\nSend it to {route}.\n{link}\n"
            "If you did not ask for this, ignore this message.\n"
        )
        return self._mail(event, email, subject, text)

    def _mail(self, event: DomainEvent[Any], email: str, subject: str, text: str) -> MailMessage:
        return MailMessage(
            message_id=event.event_id,
            user_id=event.subject_id or event.stream_id,
            to=email,
            subject=f"{self.policy.service_name}: {subject}",
            text=text,
        )


VERIFY = (
    "verify your email address",
    "Please confirm that this address is yours.",
    "POST /auth/verify-email {token}",
)
RESET = (
    "reset your password",
    "Someone (we hope you) asked to reset the password of the account of this address.",
    "POST /auth/password-reset/confirm {token, new_password}",
)
REGISTERED_AGAIN = (
    "someone tried to register your address",
    "Someone tried to create an account with this address, which already has one.\n\n"
    "If it was you: sign in instead, or reset your password (POST /auth/password-reset).\n"
    "If it was not you: nothing was changed; you need not do anything.\n",
)
PASSWORD_CHANGED = (
    "your password was changed",
    "The password of your account was changed, and every session signed out.\n\n"
    "If it was not you, reset your password now (POST /auth/password-reset).\n",
)
