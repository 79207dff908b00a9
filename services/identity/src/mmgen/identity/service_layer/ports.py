"""What the use cases work with: one bundle of adapters, assembled by `bootstrap()`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mmgen.events.keys import Keystore
from mmgen.events.repository import EventSourcedRepository
from mmgen.events.store import EventStore
from mmgen.identity.adapters.hashing import BlindIndex, PasswordHashing
from mmgen.identity.adapters.read_models import (
    AccountsReadModel,
    LoginThrottle,
    RefreshTokenStore,
)
from mmgen.identity.adapters.signing_keys import MongoSigningKeyRing
from mmgen.identity.adapters.subject_events import SubjectEvents
from mmgen.identity.domain.passwords import PasswordPolicy
from mmgen.identity.settings import IdentitySettings


@dataclass
class Adapters:
    settings: IdentitySettings
    store: EventStore
    keystore: Keystore
    repository: EventSourcedRepository
    accounts: AccountsReadModel
    refresh_tokens: RefreshTokenStore
    throttle: LoginThrottle
    keyring: MongoSigningKeyRing
    subject_events: SubjectEvents
    hashing: PasswordHashing
    blind_index: BlindIndex
    policy: PasswordPolicy
    service_credentials_key: bytes
    db: Any
