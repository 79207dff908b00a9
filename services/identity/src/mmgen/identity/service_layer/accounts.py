"""Account use cases: register, authenticate, read, correct, close, create staff, first admin."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mmgen.events.envelope import Actor
from mmgen.events.erased import is_erased
from mmgen.events.mapper import NewEvent
from mmgen.identity.adapters.read_models import PENDING
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
from mmgen.identity.domain.model import ACTIVE, CLOSED, User
from mmgen.identity.domain.passwords import normalise_password
from mmgen.identity.service_layer.ports import Adapters

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
    def __init__(self, adapters: Adapters) -> None:
        self.a = adapters

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
        password = self.a.policy.check(registration.password, context=[email, registration.name])
        index = self.a.blind_index(email)
        user_id = str(uuid.uuid4())
        await self._reserve(index, user_id)
        try:
            password_hash = await self.a.hashing.hash(password)
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
            await self.a.repository.append(user_id, 0, [event])
        except BaseException:
            await self.a.accounts.release_email(index, user_id)
            raise
        await self.a.accounts.put(user_id, role=registration.role, status=ACTIVE, email_index=index)
        await self.a.accounts.activate_email(index, user_id)
        return user_id

    async def _reserve(self, index: str, user_id: str) -> None:
        try:
            await self.a.accounts.reserve_email(index, user_id)
            return
        except EmailTakenError:
            held = await self.a.accounts.reservation(index)
            if held is None or held.get("state") != PENDING:
                raise
            other = str(held["user_id"])
            if await self.a.store.stream_version(other) > 0:
                await self._finish_registration(other, index)  # crashed after its event
                raise
            reserved = held["reserved_at"]
            reserved = reserved if reserved.tzinfo else reserved.replace(tzinfo=UTC)
            if datetime.now(UTC) - reserved < STALE_RESERVATION:
                raise  # a registration in progress
            await self.a.accounts.release_email(index, other)
        await self.a.accounts.reserve_email(index, user_id)

    async def _finish_registration(self, user_id: str, index: str) -> None:
        user = await self.a.repository.get(User, user_id)
        if user is not None and user.active and user.role:
            await self.a.accounts.put(user_id, role=user.role, status=ACTIVE, email_index=index)
            await self.a.accounts.activate_email(index, user_id)

    # --- login -----------------------------------------------------------------------------------

    def throttle_keys(self, email: str, client_address: str) -> tuple[str, list[str]]:
        """The blind index the email would have, and the throttle keys of this attempt."""
        try:
            normalised = normalise_email(email)
        except EmailInvalidError:
            normalised = email.strip().lower()[:254]
        index = self.a.blind_index(normalised)
        return index, [f"acct:{index}", f"addr:{self.a.blind_index(client_address, kind='addr')}"]

    async def authenticate(self, email: str, password: str, client_address: str) -> User:
        """The user if the credentials are right; the same error for unknown email and bad password.

        Throttled attempts are refused before any password is checked (`LoginThrottledError`).
        """
        index, keys = self.throttle_keys(email, client_address)
        await self.a.throttle.check(keys)
        user: User | None = None
        user_id = await self.a.accounts.user_id_for_email(index)
        if user_id is not None:
            doc = await self.a.accounts.get(user_id)
            if doc is not None and doc.get("status") == ACTIVE:
                user = await self.a.repository.get(User, user_id)
        known_hash = None
        if user is not None and user.active and not is_erased(user.password_hash):
            known_hash = user.password_hash
        ok = await self.a.hashing.verify(known_hash, normalise_password(password))
        if not ok or user is None:
            await self.a.throttle.record_failure(keys)
            raise InvalidCredentialsError()
        await self.a.throttle.clear(keys[0])
        return user

    # --- the user's own account -----------------------------------------------------------------

    async def load_active(self, user_id: str) -> User:
        user = await self.a.repository.get(User, user_id)
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
        old_index: str | None = None
        if "email" in changes:
            email = normalise_email(str(changes["email"]))
            if email != user.email:
                new_index = self.a.blind_index(email)
                old_index = self.a.blind_index(str(user.email))
                await self.a.accounts.reserve_email(new_index, user_id)
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
            await self.a.repository.append(user_id, user.version, events)
        except BaseException:
            if new_index is not None:
                await self.a.accounts.release_email(new_index, user_id)
            raise
        if new_index is not None and old_index is not None:
            await self.a.accounts.activate_email(new_index, user_id)
            await self.a.accounts.set_email_index(user_id, new_index)
            await self.a.accounts.release_email(old_index, user_id)
        for event in events:
            user.when(event.data, event.personal)
        return user

    @staticmethod
    def _event(data: Any, personal: Any, user: User, actor: Actor) -> NewEvent[Any]:
        return NewEvent(data, personal=personal, subject_id=user.id, actor=actor)

    async def close(self, user_id: str, actor: Actor, *, closed_by: ClosedBy = "self") -> None:
        """Close the account: refused by identity at once, by other services from the event."""
        user = await self.load_active(user_id)
        await self.a.repository.append(
            user_id,
            user.version,
            [NewEvent(AccountClosed(closed_by=closed_by), subject_id=user_id, actor=actor)],
        )
        await self.a.accounts.set_status(user_id, CLOSED)
        await self.a.refresh_tokens.revoke_user(user_id)

    # --- staff reads -----------------------------------------------------------------------------

    async def read_for_staff(self, user_id: str, actor: Actor, purpose: str) -> User:
        """A staff/compliance read of someone's account; the read itself is an access event."""
        user = await self.a.repository.get(User, user_id)
        if user is None or not user.registered:
            raise UserNotFoundError()
        fields = [
            name
            for name in ("email", "name", "phone", "business")
            if getattr(user, name) is not None and not is_erased(getattr(user, name))
        ]
        await self.a.repository.append(
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
        index = self.a.blind_index(normalise_email(email))
        if await self.a.accounts.user_id_for_email(index) is not None:
            return None
        user_id = await self.register(
            Registration(email=email, password=password, name=name, role="admin"),
            registered_by=source,
            actor=Actor(id="identity", role="service"),
        )
        log.info("created an admin account", extra={"user_id": user_id, "source": source})
        return user_id
