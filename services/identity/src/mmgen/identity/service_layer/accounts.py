"""Account use cases: register, authenticate, read, correct, close, create staff, first admin."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mmgen.events.envelope import Actor
from mmgen.events.erased import is_erased
from mmgen.events.mapper import NewEvent
from mmgen.events.repository import EventSourcedRepository
from mmgen.identity.adapters.accounts import PENDING, AccountsReadModel
from mmgen.identity.adapters.hashing import BlindIndex, PasswordHashing
from mmgen.identity.adapters.mail_projection import MailProjection
from mmgen.identity.adapters.projection import AccountsProjection
from mmgen.identity.adapters.sessions import RefreshTokenStore
from mmgen.identity.adapters.throttle import LoginThrottle
from mmgen.identity.domain.emails import normalise_email
from mmgen.identity.domain.errors import (
    AccountNotActiveError,
    EmailInvalidError,
    EmailTakenError,
    InvalidCredentialsError,
    UserNotFoundError,
)
from mmgen.identity.domain.events import (
    AccountClosed,
    BusinessCorrected,
    BusinessCorrectedPII,
    BusinessDetails,
    ClosedBy,
    EmailCorrected,
    EmailCorrectedPII,
    NameCorrected,
    NameCorrectedPII,
    PhoneCorrected,
    PhoneCorrectedPII,
    RegisteredBy,
    UserRead,
    UserRegistered,
    UserRegisteredPII,
    UserRole,
)
from mmgen.identity.domain.model import User
from mmgen.identity.domain.passwords import PasswordPolicy, normalise_password
from mmgen.identity.settings import IdentitySettings
from mmgen.platform import ConfigurationError

log = logging.getLogger(__name__)

#: A reservation left pending this long without its event is from a crashed registration.
STALE_RESERVATION = timedelta(seconds=60)


@dataclass(frozen=True)
class Registration:
    email: str
    password: str
    name: str
    role: UserRole
    phone: str | None = None
    business: BusinessDetails | None = None


@dataclass(frozen=True)
class Correction:
    """Fields a user asked to change (only those present in the request)."""

    fields: dict[str, Any]


class Accounts:
    """The account use cases. Each append is applied to the read model at once (the caller
    reads its own writes) and again, idempotently, by the runtime's catch-up projector."""

    def __init__(
        self,
        *,
        repository: EventSourcedRepository,
        accounts: AccountsReadModel,
        projection: AccountsProjection,
        refresh_tokens: RefreshTokenStore,
        throttle: LoginThrottle,
        hashing: PasswordHashing,
        blind_index: BlindIndex,
        policy: PasswordPolicy,
        mail: MailProjection | None = None,
    ) -> None:
        self.repository = repository
        self.accounts = accounts
        self.projection = projection
        self.refresh_tokens = refresh_tokens
        self.throttle = throttle
        self.hashing = hashing
        self.blind_index = blind_index
        self.policy = policy
        self.mail = mail

    # --- registration ------------------------------------------------------------------------

    async def register(
        self,
        registration: Registration,
        *,
        registered_by: RegisteredBy = "self",
        actor: Actor | None = None,
    ) -> str:
        """Create an account; the email's blind index is reserved first, so it stays unique."""
        email = normalise_email(registration.email)
        password = self.policy.check(registration.password, context=[email, registration.name])
        index = self.blind_index(email)
        user_id = str(uuid.uuid4())
        await self._reserve(index, user_id)
        try:
            password_hash = await self.hashing.hash(password)
            event = NewEvent(
                UserRegistered(role=registration.role, registered_by=registered_by),
                personal=UserRegisteredPII(
                    email=email,
                    name=registration.name,
                    phone=registration.phone,
                    business=registration.business,
                    password_hash=password_hash,
                ),
                subject_id=user_id,
                actor=actor or Actor(id=user_id, role=registration.role),
            )
            stored = await self.repository.append(user_id, 0, [event])
        except BaseException:
            await self.accounts.release_email(index, user_id)
            raise
        await self.projection.apply_events(stored)
        await self._queue_mail(stored)
        return user_id

    async def _queue_mail(self, stored: list[Any]) -> None:
        """The mail these events call for, queued now (the projector would, a moment later)."""
        if self.mail is not None:
            await self.mail.apply_events(stored)

    async def _reserve(self, index: str, user_id: str) -> None:
        try:
            await self.accounts.reserve_email(index, user_id)
            return
        except EmailTakenError:
            held = await self.accounts.reservation(index)
            if held is None or held.state != PENDING:
                raise
            if await self.repository.store.stream_version(held.user_id) > 0:
                raise  # its event is stored: the projector makes the reservation active
            reserved = held.reserved_at or datetime.now(UTC)
            if datetime.now(UTC) - reserved < STALE_RESERVATION:
                raise  # a registration in progress
            await self.accounts.release_email(index, held.user_id)  # one that crashed
        await self.accounts.reserve_email(index, user_id)

    # --- login -----------------------------------------------------------------------------------

    def throttle_keys(self, email: str, client_address: str) -> tuple[str, list[str]]:
        """The blind index the email would have, and the throttle keys of this attempt."""
        try:
            normalised = normalise_email(email)
        except EmailInvalidError:
            normalised = email.strip().lower()[:254]
        index = self.blind_index(normalised)
        return index, [f"acct:{index}", f"addr:{self.blind_index(client_address, kind='addr')}"]

    async def authenticate(
        self,
        email: str,
        password: str,
        client_address: str,
        then: Callable[[User], Awaitable[None]] | None = None,
    ) -> User:
        """The user if the credentials are right; the same error for unknown email and bad password.

        The attempt is taken on the throttle's counters before anything is looked up or hashed,
        so parallel attempts cannot all slip past a check made before the first one is counted;
        throttled attempts are refused without checking the password (`LoginThrottledError`).
        `then` checks what else the sign-in needs (the second factor) before the counters are
        cleared, so guessing one-time codes is throttled like guessing passwords.
        """
        index, keys = self.throttle_keys(email, client_address)
        await self.throttle.acquire(keys)
        user: User | None = None
        user_id = await self.accounts.user_id_for_email(index)
        if user_id is not None:
            account = await self.accounts.get(user_id)
            if account is not None and account.active:
                user = await self.repository.get(User, user_id)
        known_hash = None
        if user is not None and user.active and not is_erased(user.password_hash):
            known_hash = user.password_hash
        ok = await self.hashing.verify(known_hash, normalise_password(password))
        if not ok or user is None:
            raise InvalidCredentialsError()
        if then is not None:
            await then(user)
        await self.throttle.succeeded(keys)
        return user

    # --- the user's own account -----------------------------------------------------------------

    async def load_active(self, user_id: str) -> User:
        user = await self.repository.get(User, user_id)
        if user is None or not user.registered:
            raise UserNotFoundError()
        if not user.active:
            raise AccountNotActiveError()
        return user

    async def correct(self, user_id: str, correction: Correction, actor: Actor) -> User:
        """Apply a correction: one event per changed field; a new email must be free."""
        user = await self.load_active(user_id)
        changes = correction.fields
        events: list[NewEvent[Any]] = []
        new_index: str | None = None
        if "email" in changes:
            email = normalise_email(str(changes["email"]))
            if email != user.email:
                new_index = self.blind_index(email)
                await self.accounts.reserve_email(new_index, user_id)
                events.append(
                    self._event(EmailCorrected(), EmailCorrectedPII(email=email), user, actor)
                )
        if "name" in changes and changes["name"] != user.name:
            events.append(
                self._event(NameCorrected(), NameCorrectedPII(name=changes["name"]), user, actor)
            )
        if "phone" in changes and changes["phone"] != user.phone:
            events.append(
                self._event(
                    PhoneCorrected(), PhoneCorrectedPII(phone=changes["phone"]), user, actor
                )
            )
        if "business" in changes and changes["business"] != user.business:
            events.append(
                self._event(
                    BusinessCorrected(),
                    BusinessCorrectedPII(business=changes["business"]),
                    user,
                    actor,
                )
            )
        if not events:
            return user
        try:
            stored = await self.repository.append(user_id, user.version, events)
        except BaseException:
            if new_index is not None:
                await self.accounts.release_email(new_index, user_id)
            raise
        await self.projection.apply_events(stored)  # the new email active, the old one free
        await self._queue_mail(stored)  # the new address is to be verified
        for event in events:
            user.when(event.data, event.personal)
        return user

    @staticmethod
    def _event(data: Any, personal: Any, user: User, actor: Actor) -> NewEvent[Any]:
        return NewEvent(data, personal=personal, subject_id=user.id, actor=actor)

    async def close(
        self,
        user_id: str,
        actor: Actor | None,
        *,
        closed_by: ClosedBy = "self",
        purpose: str | None = None,
        causation_id: str | None = None,
    ) -> None:
        """Close the account: refused by identity at once, by other services from the event."""
        user = await self.load_active(user_id)
        closed = NewEvent(
            AccountClosed(closed_by=closed_by),
            subject_id=user_id,
            actor=actor,
            purpose=purpose,
            causation_id=causation_id,
        )
        stored = await self.repository.append(user_id, user.version, [closed])
        await self.projection.apply_events(stored)
        await self.refresh_tokens.revoke_user(user_id)

    # --- staff reads -----------------------------------------------------------------------------

    async def read_for_staff(self, user_id: str, actor: Actor, purpose: str) -> User:
        """A staff/compliance read of someone's account; the read itself is an access event."""
        user = await self.repository.get(User, user_id)
        if user is None or not user.registered:
            raise UserNotFoundError()
        fields = [
            name
            for name in ("email", "name", "phone", "business")
            if getattr(user, name) is not None and not is_erased(getattr(user, name))
        ]
        await self.repository.append(
            f"access-{uuid.uuid4()}",
            0,
            [
                NewEvent(
                    UserRead(fields=fields),
                    subject_id=user_id,
                    actor=actor,
                    purpose=purpose,
                    resource_id=user_id,
                )
            ],
        )
        return user

    # --- first admin -----------------------------------------------------------------------------

    async def ensure_admin(
        self, email: str, password: str, name: str, *, source: RegisteredBy
    ) -> str | None:
        """Create an admin account unless one exists with this email; returns its id if created."""
        index = self.blind_index(normalise_email(email))
        if await self.accounts.user_id_for_email(index) is not None:
            return None
        user_id = await self.register(
            Registration(email=email, password=password, name=name, role="admin"),
            registered_by=source,
            actor=Actor(id="identity", role="service"),
        )
        log.info("created an admin account", extra={"user_id": user_id, "source": source})
        return user_id


async def ensure_bootstrap_admin(accounts: Accounts, settings: IdentitySettings) -> str | None:
    """The first admin from `IDENTITY_BOOTSTRAP_ADMIN_EMAIL`/`_PASSWORD` (idempotent)."""
    email, password = settings.bootstrap_admin_email, settings.bootstrap_admin_password
    if not email and not password:
        return None
    if not email or password is None:
        raise ConfigurationError(
            "set both IDENTITY_BOOTSTRAP_ADMIN_EMAIL and IDENTITY_BOOTSTRAP_ADMIN_PASSWORD"
        )
    try:
        return await accounts.ensure_admin(
            email, password.get_secret_value(), settings.bootstrap_admin_name, source="bootstrap"
        )
    except ValueError as exc:  # the password policy or email check refused it
        raise ConfigurationError(f"the bootstrap admin cannot be created: {exc}") from exc
