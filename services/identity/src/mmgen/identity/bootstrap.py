"""Composition root: settings → database, keys, event store, read models → use cases.

`bootstrap()` wires the real adapters on one MongoDB database; the app's lifespan adds the
messaging (topics, relay, consumers) around it. Tests call it with their own settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pymongo import AsyncMongoClient

from mmgen.events.crypto import PersonalDataCipher
from mmgen.events.keys import MasterKey, MasterKeyring
from mmgen.events.mapper import EventMapper
from mmgen.events.mongo_keystore import MongoKeystore
from mmgen.events.mongo_store import MongoEventStore
from mmgen.events.repository import EventSourcedRepository
from mmgen.identity.adapters.hashing import BlindIndex, PasswordHashing, derive_key
from mmgen.identity.adapters.read_models import (
    AccountsReadModel,
    LoginThrottle,
    RefreshTokenStore,
)
from mmgen.identity.adapters.signing_keys import MongoSigningKeyRing
from mmgen.identity.adapters.subject_events import SubjectEvents
from mmgen.identity.domain.events import registry
from mmgen.identity.domain.passwords import PasswordPolicy, common_passwords
from mmgen.identity.service_layer.accounts import Accounts
from mmgen.identity.service_layer.erasure import Erasure
from mmgen.identity.service_layer.ports import Adapters
from mmgen.identity.service_layer.tokens import Tokens
from mmgen.identity.settings import IdentitySettings
from mmgen.platform import key_bytes

PRODUCER = "identity"


@dataclass
class Identity:
    """Everything the entrypoints need: the adapters and the use cases on them."""

    client: AsyncMongoClient[Any]
    adapters: Adapters
    accounts: Accounts
    tokens: Tokens
    erasure: Erasure

    @property
    def settings(self) -> IdentitySettings:
        return self.adapters.settings

    async def close(self) -> None:
        store = self.adapters.store
        if isinstance(store, MongoEventStore):
            await store.close()
        await self.client.close()


async def bootstrap(
    settings: IdentitySettings, client: AsyncMongoClient[Any] | None = None
) -> Identity:
    """Connect and wire identity; creates indexes and the first signing key if needed."""
    client = client or AsyncMongoClient(settings.mongo_uri, tz_aware=True)
    db = client[settings.mongo_database]
    master = key_bytes(settings.master_key)
    keystore = MongoKeystore(db, MasterKeyring(MasterKey(settings.master_key_id, master)))
    store = MongoEventStore(db, PRODUCER)
    mapper = EventMapper(registry, PersonalDataCipher(keystore), PRODUCER)
    repository = EventSourcedRepository(store, mapper)
    adapters = Adapters(
        settings=settings,
        store=store,
        keystore=keystore,
        repository=repository,
        accounts=AccountsReadModel(db),
        refresh_tokens=RefreshTokenStore(
            db, ttl=timedelta(seconds=settings.refresh_token_ttl_seconds)
        ),
        throttle=LoginThrottle(
            db,
            window_seconds=settings.login_failure_window_seconds,
            max_per_account=settings.login_max_failures_per_account,
            max_per_address=settings.login_max_failures_per_address,
        ),
        keyring=MongoSigningKeyRing(
            db,
            derive_key(master, "signing-keys"),
            reload_interval=settings.signing_keys_reload_seconds,
        ),
        subject_events=SubjectEvents(store),
        hashing=PasswordHashing(
            memory_kib=settings.argon2_memory_kib,
            time_cost=settings.argon2_time_cost,
            parallelism=settings.argon2_parallelism,
        ),
        blind_index=BlindIndex(key_bytes(settings.blind_index_key)),
        policy=PasswordPolicy(
            min_length=settings.password_min_length,
            max_length=settings.password_max_length,
            blocklist=common_passwords(),
        ),
        service_credentials_key=key_bytes(settings.service_credentials_key),
        db=db,
    )
    await store.ensure_indexes()
    await keystore.ensure_indexes()
    await adapters.accounts.ensure_indexes()
    await adapters.refresh_tokens.ensure_indexes()
    await adapters.throttle.ensure_indexes()
    await adapters.keyring.ensure_indexes()
    await adapters.subject_events.ensure_indexes()
    await adapters.keyring.start()
    return Identity(
        client=client,
        adapters=adapters,
        accounts=Accounts(adapters),
        tokens=Tokens(adapters),
        erasure=Erasure(adapters),
    )
