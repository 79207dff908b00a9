"""Credential life cycle (NIST SP 800-63B, ASVS V2): sign-in with a second factor, registration
that does not enumerate, email verification, password change and reset, re-authentication,
TOTP enrolment with recovery codes.

Mail is never sent from here: the events these use cases append are what the mail projection
turns into outbox messages (see `adapters/mail_projection.py`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from mmgen.events.envelope import Actor
from mmgen.events.erased import is_erased
from mmgen.events.mapper import DomainEvent, NewEvent
from mmgen.events.repository import EventSourcedRepository
from mmgen.identity.adapters.accounts import AccountsReadModel
from mmgen.identity.adapters.hashing import PasswordHashing
from mmgen.identity.adapters.mail_projection import MailProjection
from mmgen.identity.adapters.mail_tokens import OneTimeTokens
from mmgen.identity.adapters.one_time import OneTimeUses
from mmgen.identity.adapters.sessions import RefreshTokenStore
from mmgen.identity.adapters.throttle import LoginThrottle
from mmgen.identity.domain.emails import normalise_email
from mmgen.identity.domain.errors import (
    EmailInvalidError,
    EmailNotVerifiedError,
    EmailTakenError,
    InvalidCredentialsError,
    LoginThrottledError,
    OneTimeTokenInvalidError,
    ReauthenticationFailedError,
    SecondFactorRequiredError,
    TotpEnrolmentError,
)
from mmgen.identity.domain.events import (
    EmailVerified,
    PasswordChanged,
    PasswordChangedPII,
    PasswordResetRequested,
    RecoveryCodeUsed,
    RegistrationAttempted,
    TotpActivated,
    TotpEnrolled,
    TotpEnrolledPII,
)
from mmgen.identity.domain.model import User
from mmgen.identity.domain.passwords import PasswordPolicy, normalise_password
from mmgen.identity.service_layer.accounts import Accounts, Registration
from mmgen.platform import totp
from mmgen.platform.auth import AMR_OTP, AMR_PASSWORD

#: A used TOTP step is remembered a little longer than it could be presented again.
_STEP_MEMORY = timedelta(seconds=totp.STEP_SECONDS * (2 * totp.DRIFT_STEPS + 2))


@dataclass(frozen=True)
class SecondFactor:
    """What came with a password: a TOTP code or a recovery code (either may be absent)."""

    totp: str | None = None
    recovery_code: str | None = None

    @property
    def given(self) -> bool:
        return bool(self.totp or self.recovery_code)


@dataclass(frozen=True)
class Enrolment:
    secret: str
    otpauth_uri: str
    recovery_codes: list[str]


class Credentials:
    def __init__(
        self,
        *,
        accounts: Accounts,
        repository: EventSourcedRepository,
        account_records: AccountsReadModel,
        refresh_tokens: RefreshTokenStore,
        throttle: LoginThrottle,
        mail_throttle: LoginThrottle,
        hashing: PasswordHashing,
        policy: PasswordPolicy,
        uses: OneTimeUses,
        tokens: OneTimeTokens,
        mail: MailProjection,
        issuer: str = "Multimedia Gen",
        clock: Any = time.time,
    ) -> None:
        self.accounts = accounts
        self.repository = repository
        self.account_records = account_records
        self.refresh_tokens = refresh_tokens
        self.throttle = throttle
        self.mail_throttle = mail_throttle
        self.hashing = hashing
        self.policy = policy
        self.uses = uses
        self.tokens = tokens
        self.mail = mail
        self.issuer = issuer
        self.clock = clock

    async def _append(self, user: User, events: list[NewEvent[Any]]) -> list[DomainEvent[Any]]:
        stored = await self.repository.append(user.id, user.version, events)
        await self.accounts.projection.apply_events(stored)
        await self.mail.apply_events(stored)
        return stored

    # --- sign-in -----------------------------------------------------------------------------

    async def sign_in(
        self, email: str, password: str, factor: SecondFactor, client_address: str
    ) -> tuple[User, list[str]]:
        """The user and the token's `amr`. An account with TOTP needs a code (or a recovery
        code): none given → `SecondFactorRequiredError`, a wrong one → the generic
        `InvalidCredentialsError`; both leave the throttle's counters taken."""
        methods = [AMR_PASSWORD]

        async def second_factor(user: User) -> None:
            if not user.totp_enabled:
                return
            if not factor.given:
                raise SecondFactorRequiredError()
            if not await self._second_factor_ok(user, factor):
                raise InvalidCredentialsError()
            methods.append(AMR_OTP)

        user = await self.accounts.authenticate(email, password, client_address, second_factor)
        return user, methods

    async def _second_factor_ok(self, user: User, factor: SecondFactor) -> bool:
        if is_erased(user.totp_secret) or user.totp_secret is None:
            return False
        if factor.totp:
            secret = totp.secret_from_text(str(user.totp_secret))
            return await self._claim_code(user.id, secret, factor.totp.strip())
        if factor.recovery_code:
            return await self._spend_recovery_code(user, factor.recovery_code)
        return False

    async def _claim_code(self, user_id: str, secret: bytes, code: str) -> bool:
        """A code of the drift window whose step was not used yet (RFC 6238 §5.2: a code
        accepted once is refused afterwards), claimed atomically."""
        expires = datetime.now(UTC) + _STEP_MEMORY
        for step in totp.matching_steps(secret, code, self.clock()):
            if await self.uses.claim(f"totp:{user_id}:{step}", expires):
                return True
        return False

    async def _spend_recovery_code(self, user: User, code: str) -> bool:
        presented = totp.recovery_code_hash(code)
        for index, known in enumerate(user.recovery_codes):
            if known is not None and known == presented:
                remaining = sum(1 for h in user.recovery_codes if h is not None) - 1
                # Appended at the version read: two requests spending the same code cannot
                # both succeed (the second gets a concurrency error).
                await self._append(
                    user,
                    [
                        NewEvent(
                            RecoveryCodeUsed(index=index, remaining=remaining),
                            subject_id=user.id,
                            actor=Actor(id=user.id, role=str(user.role)),
                        )
                    ],
                )
                return True
        return False

    # --- registration ------------------------------------------------------------------------

    async def register(self, registration: Registration, client_address: str) -> None:
        """Register, answering the same whether the address was free or taken: a taken
        address's owner is told by mail instead. Throttled per address (the mailbox's blind
        index) and per client address, before any work."""
        _, keys = self.accounts.throttle_keys(registration.email, client_address)
        await self.mail_throttle.acquire(_mail_keys(keys))
        try:
            await self.accounts.register(registration)
        except EmailTakenError:
            # Hash anyway: a taken address must not answer faster than a free one.
            await self.hashing.hash(normalise_password(registration.password))
            await self._tell_owner(registration.email)

    async def _tell_owner(self, email: str) -> None:
        index = self.accounts.blind_index(normalise_email(email))
        owner = await self.account_records.user_id_for_email(index)
        if owner is None:
            return  # a registration in progress, or one that crashed
        user = await self.repository.get(User, owner)
        if user is None or not user.active:
            return
        stored = await self.repository.append(
            f"notice-{uuid.uuid4()}",
            0,
            [NewEvent(RegistrationAttempted(), subject_id=owner, resource_id=owner)],
        )
        await self.mail.apply_events(stored)

    # --- email verification ----------------------------------------------------------------------

    async def verify_email(self, raw_token: str) -> None:
        token = self.tokens.parse(raw_token, "verify")
        if token is None:
            raise OneTimeTokenInvalidError()
        user = await self._token_owner(token.user_id)
        if user.email_verified or token.version != user.email_version:
            raise OneTimeTokenInvalidError()  # used, or the address changed since
        if not await self.uses.claim(token.use_key, token.expires_at):
            raise OneTimeTokenInvalidError()
        await self._append(
            user,
            [
                NewEvent(
                    EmailVerified(email_version=token.version),
                    subject_id=user.id,
                    actor=Actor(id=user.id, role=str(user.role)),
                )
            ],
        )

    async def _token_owner(self, user_id: str) -> User:
        user = await self.repository.get(User, user_id)
        if user is None or not user.active:
            raise OneTimeTokenInvalidError()
        return user

    # --- passwords -----------------------------------------------------------------------------

    async def reauthenticate(
        self, user_id: str, password: str, factor: SecondFactor, client_address: str
    ) -> User:
        """The caller proves again who they are (current password, and a one-time code if they
        have TOTP) before a sensitive change; attempts count on the sign-in throttle."""
        user = await self.accounts.load_active(user_id)
        _, keys = self.accounts.throttle_keys(str(user.email), client_address)
        await self.throttle.acquire(keys)
        known = None if is_erased(user.password_hash) else user.password_hash
        if not await self.hashing.verify(known, normalise_password(password)):
            raise ReauthenticationFailedError()
        if user.totp_enabled and not await self._second_factor_ok(user, factor):
            raise ReauthenticationFailedError()
        await self.throttle.succeeded(keys)
        if user.totp_enabled and not factor.totp and factor.recovery_code:
            return await self.accounts.load_active(user_id)  # a recovery code was spent
        return user

    async def change_password(
        self, user_id: str, current: str, new: str, client_address: str, actor: Actor
    ) -> None:
        """Needs the current password; every refresh token of the account is revoked."""
        user = await self.accounts.load_active(user_id)
        password = self.policy.check(new, context=[str(user.email), str(user.name)])
        user = await self.reauthenticate(user_id, current, SecondFactor(), client_address)
        await self._set_password(user, password, "change", actor)

    async def _set_password(
        self,
        user: User,
        password: str,
        method: Literal["change", "reset"],
        actor: Actor,
        also: Sequence[Any] = (),
    ) -> None:
        password_hash = await self.hashing.hash(password)
        events: list[NewEvent[Any]] = [
            NewEvent(
                PasswordChanged(method=method, tokens_not_before=await self._not_before(user)),
                personal=PasswordChangedPII(password_hash=password_hash),
                subject_id=user.id,
                actor=actor,
            ),
            *[NewEvent(data, subject_id=user.id, actor=actor) for data in also],
        ]
        await self._append(user, events)
        await self.refresh_tokens.revoke_user(user.id)

    async def _not_before(self, user: User) -> int:
        """The instant from which the account's tokens count, for a change that voids the earlier
        ones. Whole seconds, as a token's `iat`: every token issued so far has an `iat` below it
        (those issued after an earlier change too, however recent: they got its instant), and
        identity issues the account's next tokens no earlier (`TokenIssuer`)."""
        record = await self.account_records.get(user.id)
        previous = record.tokens_not_before if record is not None else None
        return max(int(self.clock()) + 1, (previous or 0) + 1)

    async def request_password_reset(self, email: str, client_address: str) -> None:
        """Mail a one-time reset token to the account of `email`, if there is an active one.
        The caller learns nothing either way (the route answers the same); past the throttle
        the request is dropped silently."""
        try:
            normalised = normalise_email(email)
        except EmailInvalidError:
            return
        _, keys = self.accounts.throttle_keys(normalised, client_address)
        try:
            await self.mail_throttle.acquire(_mail_keys(keys))
        except LoginThrottledError:
            return
        owner = await self.account_records.user_id_for_email(self.accounts.blind_index(normalised))
        if owner is None:
            return
        user = await self.repository.get(User, owner)
        if user is None or not user.active:
            return
        await self._append(
            user, [NewEvent(PasswordResetRequested(), subject_id=user.id, resource_id=user.id)]
        )

    async def confirm_password_reset(self, raw_token: str, new_password: str) -> None:
        """Set a new password with a mailed token: once, before it expires, and only if the
        password was not changed since it was asked for. Revokes every session; the mailbox is
        proven, so the address counts as verified when it is still the one the token went to."""
        token = self.tokens.parse(raw_token, "reset")
        if token is None:
            raise OneTimeTokenInvalidError()
        user = await self._token_owner(token.user_id)
        if token.version > user.version or token.version < user.password_version:
            raise OneTimeTokenInvalidError()
        password = self.policy.check(new_password, context=[str(user.email), str(user.name)])
        if not await self.uses.claim(token.use_key, token.expires_at):
            raise OneTimeTokenInvalidError()
        also = []
        if not user.email_verified and user.email_version <= token.version:
            also.append(EmailVerified(email_version=user.email_version))
        actor = Actor(id=user.id, role=str(user.role))
        await self._set_password(user, password, "reset", actor, also)
        index = self.accounts.blind_index(str(user.email))
        await self.throttle.succeeded([f"acct:{index}"])  # the owner signs in at once

    # --- TOTP ----------------------------------------------------------------------------------

    async def enrol_totp(
        self, user_id: str, password: str, factor: SecondFactor, client_address: str
    ) -> Enrolment:
        """A new secret and recovery codes (shown once), pending until a code confirms them.

        Needs the password (and, replacing an active TOTP, a code of it) and a verified email:
        a squatter of an unverified address must not be able to put a second factor between
        the address's owner and a password reset."""
        user = await self.reauthenticate(user_id, password, factor, client_address)
        if not user.email_verified:
            raise EmailNotVerifiedError()
        secret = totp.new_secret()
        codes = totp.new_recovery_codes()
        await self._append(
            user,
            [
                NewEvent(
                    TotpEnrolled(),
                    personal=TotpEnrolledPII(
                        secret=totp.secret_text(secret),
                        recovery_code_hashes=[totp.recovery_code_hash(c) for c in codes],
                    ),
                    subject_id=user.id,
                    actor=Actor(id=user.id, role=str(user.role)),
                )
            ],
        )
        return Enrolment(
            secret=totp.secret_text(secret),
            otpauth_uri=totp.otpauth_uri(secret, str(user.email), self.issuer),
            recovery_codes=codes,
        )

    async def confirm_totp(self, user_id: str, code: str) -> None:
        """Switch the second factor on; every token issued before is void.

        A session signed in with the password alone would otherwise go on (a refresh keeps
        its sign-in's factors) and never meet the code the account now requires: the refresh
        tokens are revoked here, and the access tokens everywhere as `TotpActivated` is read,
        as after a password change. The owner signs in again, with a code."""
        user = await self.accounts.load_active(user_id)
        pending = user.pending_totp
        if pending is None or is_erased(pending):
            raise TotpEnrolmentError("no TOTP enrolment waits for confirmation")
        secret = totp.secret_from_text(pending.secret)
        if not await self._claim_code(user.id, secret, code.strip()):
            raise TotpEnrolmentError("the code does not match the enrolled secret")
        await self._append(
            user,
            [
                NewEvent(
                    TotpActivated(tokens_not_before=await self._not_before(user)),
                    subject_id=user.id,
                    actor=Actor(id=user.id, role=str(user.role)),
                )
            ],
        )
        await self.refresh_tokens.revoke_user(user.id)


def _mail_keys(keys: list[str]) -> list[str]:
    """The sign-in keys (`acct:<index>`, `addr:<hash>`) as keys of the mail-request throttle:
    the kind prefix first, which picks the limit."""
    return [key.replace(":", ":mail:", 1) for key in keys]
