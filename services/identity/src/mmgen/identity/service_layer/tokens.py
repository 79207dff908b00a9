"""Token use cases: access/refresh pairs, refresh rotation with reuse detection, service tokens,
signing-key rotation.

Every access token names the services it is for (`aud`, a list): those the caller asked for,
within its role's allowance (`mmgen.platform.auth.audiences`), by default all of them; a refresh
keeps what the sign-in asked, and the sign-in's time (`auth_time`: a refresh is not a sign-in). A
user token is never issued before the account's
`tokens_not_before` (its last password change), so the token handed out right after a change
is not caught by the revocation of the earlier ones.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from mmgen.events.envelope import Actor
from mmgen.events.ids import new_event_id
from mmgen.events.mapper import NewEvent
from mmgen.events.repository import EventSourcedRepository
from mmgen.identity.adapters.accounts import AccountsReadModel
from mmgen.identity.adapters.hashing import service_secret_matches
from mmgen.identity.adapters.sessions import RefreshTokenStore
from mmgen.identity.adapters.signing_keys import Rotation, SigningKeyRing
from mmgen.identity.domain.errors import (
    RefreshTokenInvalidError,
    RefreshTokenReusedError,
    ServiceCredentialsInvalidError,
)
from mmgen.identity.domain.events import RefreshTokenReuseDetected, SigningKeyRotated
from mmgen.identity.settings import IdentitySettings
from mmgen.platform.auth import AMR_PASSWORD, issue_token
from mmgen.platform.auth.audiences import audiences_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    expires_in: int
    refresh_token: str


@dataclass(frozen=True)
class ServiceToken:
    access_token: str
    expires_in: int


class TokenIssuer:
    """Access, refresh and service tokens, and the rotation of the keys that sign them."""

    def __init__(
        self,
        settings: IdentitySettings,
        *,
        keyring: SigningKeyRing,
        refresh_tokens: RefreshTokenStore,
        accounts: AccountsReadModel,
        repository: EventSourcedRepository,
        service_credentials_key: bytes,
    ) -> None:
        self.settings = settings
        self.keyring = keyring
        self.refresh_tokens = refresh_tokens
        self.accounts = accounts
        self.repository = repository
        self.service_credentials_key = service_credentials_key

    async def _access_token(
        self,
        subject: str,
        role: str,
        ttl_seconds: int,
        amr: Sequence[str] | None = None,
        audiences: Sequence[str] | None = None,
        auth_time: datetime | None = None,
    ) -> str:
        """Raises `AudienceNotAllowedError` (nothing issued) for an audience outside the role's
        allowance."""
        aud = audiences_for(role, audiences)
        key = await self.keyring.signing_key()
        return issue_token(
            key,
            subject=subject,
            role=role,
            issuer=self.settings.jwt_issuer,
            audience=aud,
            ttl=timedelta(seconds=ttl_seconds),
            now=await self._issued_at(subject, role),
            amr=amr,
            auth_time=auth_time,
        )

    async def _issued_at(self, subject: str, role: str) -> datetime:
        """Now, or the account's `tokens_not_before` when that is later (a password changed
        within this second: the new token must outlive the revocation of the old ones)."""
        now = datetime.now(UTC)
        if role == "service":
            return now
        account = await self.accounts.get(subject)
        not_before = account.tokens_not_before if account is not None else None
        if not_before is not None and not_before > now.timestamp():
            return datetime.fromtimestamp(not_before, UTC)
        return now

    async def issue_pair(
        self,
        user_id: str,
        role: str,
        amr: Sequence[str] = (AMR_PASSWORD,),
        audiences: Sequence[str] | None = None,
    ) -> TokenPair:
        """A fresh login: an access token and the first refresh token of a new family; both
        carry how the user authenticated (`amr`: ["pwd"] or ["pwd", "otp"]) and the audiences
        asked (None: every one the role may hold). An audience outside the role's allowance →
        `AudienceNotAllowedError` before anything is issued."""
        ttl = self.settings.access_token_ttl_seconds
        signed_in = datetime.now(UTC)
        # The access token first: it refuses an audience outside the allowance.
        access = await self._access_token(user_id, role, ttl, amr, audiences, signed_in)
        refresh = await self.refresh_tokens.issue(
            user_id, role, amr=amr, audiences=audiences, auth_time=signed_in
        )
        return TokenPair(access, ttl, refresh)

    async def refresh(self, refresh_token: str) -> TokenPair:
        """Spend a refresh token for a new pair (for the audiences its sign-in asked); a reused
        one revokes its family (and says so)."""
        try:
            outcome = await self.refresh_tokens.rotate(refresh_token)
        except RefreshTokenReusedError as reuse:
            await self.repository.append(
                f"session-{new_event_id()}",
                0,
                [
                    NewEvent(
                        RefreshTokenReuseDetected(
                            family_id=reuse.family_id, revoked_tokens=reuse.revoked
                        ),
                        subject_id=reuse.user_id,
                        resource_id=reuse.family_id,
                    )
                ],
            )
            log.warning("refresh token reuse: family revoked", extra={"family": reuse.family_id})
            raise
        account = await self.accounts.get(outcome.user_id)
        if account is None or not account.active:
            await self.refresh_tokens.revoke_family(outcome.family_id)
            raise RefreshTokenInvalidError("the account is closed")
        ttl = self.settings.access_token_ttl_seconds
        access = await self._access_token(
            outcome.user_id, outcome.role, ttl, outcome.amr, outcome.audiences, outcome.auth_time
        )
        return TokenPair(access, ttl, outcome.token)

    async def service_token(
        self, service: str, secret: str, audiences: Sequence[str] | None = None
    ) -> ServiceToken:
        """A short `role: service` token for `/internal/` calls, against the service secret,
        for the services asked (None: every one a service token may reach)."""
        known = service in self.settings.service_clients
        # Compare even for an unknown name, so timing does not tell which names exist.
        matches = service_secret_matches(self.service_credentials_key, service, secret)
        if not (known and matches):
            raise ServiceCredentialsInvalidError()
        ttl = self.settings.service_token_ttl_seconds
        token = await self._access_token(service, "service", ttl, audiences=audiences)
        return ServiceToken(token, ttl)

    async def rotate_signing_key(self, actor: Actor) -> Rotation:
        """A new signing key, published now and signing after the publish delay; the old one
        verifies until every token it signed has expired."""
        longest = max(
            self.settings.access_token_ttl_seconds, self.settings.service_token_ttl_seconds
        )
        rotation = await self.keyring.rotate(
            timedelta(seconds=longest + self.settings.jwt_leeway_seconds),
            timedelta(seconds=self.settings.signing_key_publish_seconds),
        )
        until, signs_from = rotation.previous_verifies_until, rotation.signs_from
        await self.repository.append(
            "signing-keys",
            await self.repository.store.stream_version("signing-keys"),
            [
                NewEvent(
                    SigningKeyRotated(
                        kid=rotation.kid,
                        previous_kid=rotation.previous_kid,
                        previous_verifies_until=until.isoformat() if until else None,
                        signs_from=signs_from.isoformat() if signs_from else None,
                    ),
                    actor=actor,
                    resource_id=rotation.kid,
                )
            ],
        )
        return rotation


class AccountDenylist:
    """`SubjectDenylist` of identity's own verifier: a user token works only while its account
    is active (closed or erased → refused at once) and if issued after its last password change.
    Service tokens (`sub` = a service name) are not accounts and pass."""

    def __init__(self, accounts: AccountsReadModel) -> None:
        self.accounts = accounts

    async def is_denied(self, subject_id: str) -> bool:
        if not _is_account_id(subject_id):
            return False
        account = await self.accounts.get(subject_id)
        return account is None or not account.active

    async def not_before(self, subject_id: str) -> float | None:
        """The account's last password change: tokens issued before it are void."""
        if not _is_account_id(subject_id):
            return None
        account = await self.accounts.get(subject_id)
        if account is None or account.tokens_not_before is None:
            return None
        return float(account.tokens_not_before)


def _is_account_id(subject_id: str) -> bool:
    try:
        uuid.UUID(subject_id)
    except ValueError:
        return False
    return True
