"""Composition root: settings → the runtime, identity's adapters and use cases. No I/O.

`bootstrap(settings)` wires the MongoDB adapters on the service's database; pass a kernel from
`mmgen.events.kernel.in_memory_kernel` (with a registry from `identity_registry()`) and every
read model not given is its `InMemory*` fake, so the service layer runs without a database or
a broker. What needs I/O — indexes, the first signing key, the first admin — is registered on
the runtime and happens in its lifespan.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry
from pymongo.asynchronous.database import AsyncDatabase

from mmgen.events.kernel import EventKernel
from mmgen.events.mongo_store import MongoEventStore
from mmgen.identity.adapters.accounts import (
    AccountsReadModel,
    InMemoryAccountsReadModel,
    MongoAccountsReadModel,
)
from mmgen.identity.adapters.client_secrets import write_client_secrets
from mmgen.identity.adapters.hashing import BlindIndex, PasswordHashing, derive_key
from mmgen.identity.adapters.mail import (
    InMemoryMailOutbox,
    InMemoryMailTransport,
    MailOutbox,
    MailSender,
    MailTransport,
    MongoMailOutbox,
    SmtpConfig,
    SmtpTransport,
)
from mmgen.identity.adapters.mail_projection import PROJECTION as MAIL_PROJECTION
from mmgen.identity.adapters.mail_projection import MailPolicy, MailProjection
from mmgen.identity.adapters.mail_tokens import OneTimeTokens
from mmgen.identity.adapters.one_time import InMemoryOneTimeUses, MongoOneTimeUses, OneTimeUses
from mmgen.identity.adapters.projection import PROJECTION, AccountsProjection
from mmgen.identity.adapters.sessions import (
    InMemoryRefreshTokenStore,
    MongoRefreshTokenStore,
    RefreshTokenStore,
)
from mmgen.identity.adapters.signing_keys import (
    InMemorySigningKeyRing,
    MongoSigningKeyRing,
    SigningKeyRing,
)
from mmgen.identity.adapters.subject_events import (
    InMemorySubjectEvents,
    MongoSubjectEvents,
    SubjectEvents,
)
from mmgen.identity.adapters.throttle import (
    InMemoryLoginThrottle,
    LoginThrottle,
    MongoLoginThrottle,
    ThrottleLimits,
)
from mmgen.identity.domain.events import identity_registry
from mmgen.identity.domain.history import STANDARD_EVENT_VERSIONS, register_upcasters
from mmgen.identity.domain.passwords import PasswordPolicy
from mmgen.identity.service_layer.accounts import Accounts, ensure_bootstrap_admin
from mmgen.identity.service_layer.credentials import Credentials
from mmgen.identity.service_layer.erasure import IdentityErasure
from mmgen.identity.service_layer.tokens import AccountDenylist, TokenIssuer
from mmgen.identity.settings import IdentitySettings
from mmgen.platform import ConfigurationError, key_bytes
from mmgen.platform.auth import TokenVerifier
from mmgen.runtime.erasure import ErasureCommands
from mmgen.runtime.service import ServiceRuntime

P = TypeVar("P")


@dataclass
class IdentityService:
    """What the entrypoints (and tests) work with: the runtime, the use cases, the ports."""

    settings: IdentitySettings
    runtime: ServiceRuntime
    accounts: Accounts
    credentials: Credentials
    tokens: TokenIssuer
    erasure: IdentityErasure
    erasure_commands: ErasureCommands
    projection: AccountsProjection
    account_records: AccountsReadModel
    refresh_tokens: RefreshTokenStore
    throttle: LoginThrottle
    keyring: SigningKeyRing
    verifier: TokenVerifier
    service_credentials_key: bytes
    mail_outbox: MailOutbox
    mail_sender: MailSender
    mail_projection: MailProjection
    one_time_uses: OneTimeUses

    @property
    def kernel(self) -> EventKernel:
        return self.runtime.kernel


class StartupTasks:
    """At start (after the runtime's parts): the first admin, the service clients' secrets."""

    def __init__(self, accounts: Accounts, settings: IdentitySettings, credentials: bytes) -> None:
        self.accounts = accounts
        self.settings = settings
        self.credentials = credentials

    async def start(self) -> None:
        await ensure_bootstrap_admin(self.accounts, self.settings)
        write_client_secrets(self.settings, self.credentials)

    async def stop(self) -> None:
        """Nothing runs after start."""


class MailSenderComponent:
    """Starts the outbox's sender; outside the local stack, refuses to start without SMTP."""

    def __init__(self, sender: MailSender, settings: IdentitySettings) -> None:
        self.sender = sender
        self.settings = settings

    async def start(self) -> None:
        if self.sender.transport is None and not self.settings.is_local_stack:
            raise ConfigurationError(
                "identity mails verification and password-reset tokens: set IDENTITY_SMTP_HOST "
                "(and IDENTITY_SMTP_PORT, _USERNAME, _PASSWORD, _FROM, _STARTTLS); only the local "
                "stack may run without a mail server"
            )
        await self.sender.start()

    async def stop(self) -> None:
        await self.sender.stop()


def smtp_transport(settings: IdentitySettings) -> MailTransport | None:
    """SMTP from the settings, or None when no server is configured."""
    if settings.smtp_host is None:
        return None
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    return SmtpTransport(
        SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            username=settings.smtp_username,
            password=password,
            starttls=settings.smtp_starttls,
        )
    )


def bootstrap(
    settings: IdentitySettings,
    *,
    kernel: EventKernel | None = None,
    accounts: AccountsReadModel | None = None,
    refresh_tokens: RefreshTokenStore | None = None,
    throttle: LoginThrottle | None = None,
    keyring: SigningKeyRing | None = None,
    subject_events: SubjectEvents | None = None,
    hashing: PasswordHashing | None = None,
    metrics_registry: CollectorRegistry | None = None,
    mail_outbox: MailOutbox | None = None,
    mail_transport: MailTransport | None = None,
    one_time_uses: OneTimeUses | None = None,
) -> IdentityService:
    """Wire identity on its runtime (see the module docstring)."""
    registry = kernel.mapper.registry if kernel is not None else identity_registry()
    register_upcasters(registry)
    runtime = ServiceRuntime(
        settings,
        registry,
        kernel=kernel,
        metrics_registry=metrics_registry,
        standard_event_versions=STANDARD_EVENT_VERSIONS,
    )
    registry.check()
    db, masters = runtime.db, settings.master_keyring()

    def port(given: P | None, mongo: Callable[[AsyncDatabase[Any]], P], fake: Callable[[], P]) -> P:
        if given is not None:
            return given
        return fake() if db is None else mongo(db)

    limits = ThrottleLimits(
        window=timedelta(seconds=settings.login_failure_window_seconds),
        max_per_account=settings.login_max_failures_per_account,
        max_per_address=settings.login_max_failures_per_address,
        delay_base=timedelta(seconds=settings.login_delay_base_seconds),
        delay_max=timedelta(seconds=settings.login_delay_max_seconds),
    )
    mail_limits = ThrottleLimits(
        window=timedelta(seconds=settings.mail_requests_window_seconds),
        max_per_account=settings.mail_requests_max_per_email,
        max_per_address=settings.mail_requests_max_per_address,
        delay_base=timedelta(seconds=settings.login_delay_base_seconds),
        delay_max=timedelta(seconds=settings.login_delay_max_seconds),
    )
    ttl = timedelta(seconds=settings.refresh_token_ttl_seconds)
    store = runtime.kernel.store
    accounts = port(accounts, MongoAccountsReadModel, InMemoryAccountsReadModel)
    refresh_tokens = port(
        refresh_tokens,
        lambda db: MongoRefreshTokenStore(db, ttl=ttl),
        lambda: InMemoryRefreshTokenStore(ttl=ttl),
    )
    throttle = port(
        throttle, lambda db: MongoLoginThrottle(db, limits), lambda: InMemoryLoginThrottle(limits)
    )
    keyring = port(
        keyring,
        lambda db: MongoSigningKeyRing(
            db,
            derive_key(masters.current.key, "signing-keys"),
            retired_wrapping_keys=[derive_key(m.key, "signing-keys") for m in masters.retired],
            reload_interval=settings.signing_keys_reload_seconds,
            unknown_kid_reload_interval=settings.signing_keys_unknown_kid_reload_seconds,
        ),
        InMemorySigningKeyRing,
    )
    subject_events = port(
        subject_events,
        lambda db: MongoSubjectEvents(_mongo_store(store)),
        lambda: InMemorySubjectEvents(store),
    )
    # Same collection, keys of their own (`acct:mail:…`, `addr:mail:…`), limits of their own.
    mail_throttle = (
        InMemoryLoginThrottle(mail_limits) if db is None else MongoLoginThrottle(db, mail_limits)
    )
    mail_outbox = port(mail_outbox, MongoMailOutbox, InMemoryMailOutbox)
    one_time_uses = port(one_time_uses, MongoOneTimeUses, InMemoryOneTimeUses)
    if mail_transport is None:
        mail_transport = InMemoryMailTransport() if db is None else smtp_transport(settings)
    for part in (accounts, refresh_tokens, throttle, keyring, subject_events, mail_outbox,
                 one_time_uses):  # fmt: skip
        ensure_indexes = getattr(part, "ensure_indexes", None)
        if ensure_indexes is not None:
            runtime.on_prepare(ensure_indexes)
    runtime.on_prepare(keyring.start)

    repository = runtime.kernel.repository
    blind_index = BlindIndex(key_bytes(settings.blind_index_key))
    projection = AccountsProjection(accounts, repository.mapper, blind_index)
    runtime.projection(PROJECTION, projection.apply)
    credentials = key_bytes(settings.service_credentials_key)
    sender = MailSender(mail_outbox, mail_transport, interval=settings.mail_poll_seconds)
    one_time_tokens = OneTimeTokens(derive_key(masters.current.key, "one-time-tokens"))
    mail = MailProjection(
        mapper=repository.mapper,
        repository=repository,
        outbox=mail_outbox,
        tokens=one_time_tokens,
        policy=MailPolicy(
            verify_ttl=timedelta(seconds=settings.email_verification_ttl_seconds),
            reset_ttl=timedelta(seconds=settings.password_reset_ttl_seconds),
            link_base_url=settings.mail_link_base_url,
            service_name=settings.totp_issuer,
        ),
        wake=sender.wake,
    )
    runtime.projection(MAIL_PROJECTION, mail.apply)
    hasher = hashing or PasswordHashing(
        memory_kib=settings.argon2_memory_kib,
        time_cost=settings.argon2_time_cost,
        parallelism=settings.argon2_parallelism,
    )
    policy = PasswordPolicy(
        min_length=settings.password_min_length, max_length=settings.password_max_length
    )
    use_cases = Accounts(
        repository=repository,
        accounts=accounts,
        projection=projection,
        refresh_tokens=refresh_tokens,
        throttle=throttle,
        hashing=hasher,
        blind_index=blind_index,
        policy=policy,
        mail=mail,
    )
    credential_cases = Credentials(
        accounts=use_cases,
        repository=repository,
        account_records=accounts,
        refresh_tokens=refresh_tokens,
        throttle=throttle,
        mail_throttle=mail_throttle,
        hashing=hasher,
        policy=policy,
        uses=one_time_uses,
        tokens=one_time_tokens,
        mail=mail,
        issuer=settings.totp_issuer,
    )
    erasure = IdentityErasure(
        repository=repository,
        keystore=runtime.kernel.keystore,
        accounts=use_cases,
        account_records=accounts,
        refresh_tokens=refresh_tokens,
        throttle=throttle,
        subject_events=subject_events,
        mail_outbox=mail_outbox,
        one_time_uses=one_time_uses,
    )
    erasure_commands = runtime.erasure(erasure)
    runtime.component(StartupTasks(use_cases, settings, credentials))
    runtime.component(MailSenderComponent(sender, settings))
    return IdentityService(
        settings=settings,
        runtime=runtime,
        accounts=use_cases,
        credentials=credential_cases,
        tokens=TokenIssuer(
            settings,
            keyring=keyring,
            refresh_tokens=refresh_tokens,
            accounts=accounts,
            repository=repository,
            service_credentials_key=credentials,
        ),
        erasure=erasure,
        erasure_commands=erasure_commands,
        projection=projection,
        account_records=accounts,
        refresh_tokens=refresh_tokens,
        throttle=throttle,
        keyring=keyring,
        verifier=TokenVerifier(
            keyring,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=settings.jwt_leeway_seconds,
            denylist=AccountDenylist(accounts),
            max_lifetime=settings.jwt_max_lifetime_seconds,
        ),
        service_credentials_key=credentials,
        mail_outbox=mail_outbox,
        mail_sender=sender,
        mail_projection=mail,
        one_time_uses=one_time_uses,
    )


def _mongo_store(store: object) -> MongoEventStore:
    if not isinstance(store, MongoEventStore):
        raise TypeError("a database-backed runtime has a MongoEventStore")
    return store
