"""Settings of the console, read from `CONSOLE_*` environment variables.

The console holds no personal data of its own, only its officers' sessions (in its own
database, the tokens sealed under `master_key`). It needs where identity, the audit log
(consent) and retention answer, and the keys the browser verifies the audit log with. Those
keys are **pinned** here, obtained out of band (the log's operator, each witness), and served
to the browser from these settings — never fetched from the log being checked.
"""

from __future__ import annotations

import os
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from mmgen.auditlog.checkpoint import NoteVerifier
from mmgen.auditlog.cosignature import CosignatureVerifier
from mmgen.auditlog.errors import KeyMalformedError
from mmgen.events.keys import MasterKey, MasterKeyring
from mmgen.platform import ServiceSettings, dev_secret
from mmgen.platform.settings import Environment, key_bytes

DEFAULT_PORTS = {"identity": 8001, "consent": 8004, "retention": 8005}


def _stack_url(service: str) -> str:
    """The stack's `MMGEN_<SERVICE>_URL` (set by `mmgen up`), else the default local port."""
    found = os.environ.get(f"MMGEN_{service.upper()}_URL")
    return found or f"http://127.0.0.1:{DEFAULT_PORTS[service]}"


class ConsoleSettings(ServiceSettings):
    """Everything the console is configured by (prefix `CONSOLE_`)."""

    model_config = SettingsConfigDict(env_prefix="CONSOLE_", extra="ignore", frozen=True)

    service_name: str = "console"
    #: The console's own database: its officers' sessions and the key sealing their tokens.
    mongo_database: str = "console"
    port: int = Field(default=8006, ge=0, le=65535)
    jwks_url: str | None = "http://127.0.0.1:8001/.well-known/jwks.json"
    #: A sign-in form or a hold is a few hundred bytes.
    max_body_bytes: int = Field(default=16 * 1024, ge=1024, le=1024 * 1024)

    #: Base URLs of the services the console calls with the officer's token.
    identity_url: str | None = None
    audit_url: str | None = None
    retention_url: str | None = None
    upstream_timeout_seconds: float = Field(default=10.0, gt=0, le=120)

    #: The audit log's verifier key (`<origin>+<key id>+<base64>`, `mmgen audit public-key`
    #: or the operator's word), pinned: the browser checks every signed head with it.
    audit_log_key: str | None = None
    #: Witness cosignature keys (`<name>+<key id>+<base64>`), separated by commas or spaces.
    witness_keys: Annotated[tuple[str, ...], NoDecode] = ()
    #: Cosignatures of distinct pinned witnesses a head needs to count as verified.
    witness_quorum: int = Field(default=0, ge=0, le=16)

    #: A session ends when the officer's access token does, or after this long idle.
    session_idle_seconds: int = Field(default=900, ge=60, le=86_400)
    #: Sessions open at once (a full table refuses new sign-ins).
    max_sessions: int = Field(default=1000, ge=1, le=100_000)
    #: Wraps the data key that seals the officers' tokens in the session records.
    master_key: SecretStr = dev_secret("console-master-key")
    #: Names the master key in the wrapped data key (change it when rotating).
    master_key_id: str = "mk-1"
    #: Earlier master keys, `{key_id: base64 key}`, still able to unwrap the data key.
    master_keys_retired: dict[str, SecretStr] = Field(default_factory=dict)
    #: How long the unwrapped data key stays cached in the process.
    key_cache_ttl_seconds: float = Field(default=300.0, ge=0)
    #: `Secure` on the session cookie; default: everywhere but a development stack on
    #: plain HTTP (`mmgen up`).
    cookie_secure: bool | None = None

    @field_validator("witness_keys", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str) and not value.lstrip().startswith("["):
            return tuple(part for part in value.replace(",", " ").split() if part)
        return value

    @field_validator("audit_log_key")
    @classmethod
    def _log_key(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            return NoteVerifier.from_string(value.strip()).to_string()
        except KeyMalformedError as exc:
            raise ValueError(f"not an audit-log verifier key: {exc}") from exc

    @field_validator("witness_keys")
    @classmethod
    def _witness_keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        keys = []
        for key in value:
            try:
                keys.append(CosignatureVerifier.from_string(key).to_string())
            except KeyMalformedError as exc:
                raise ValueError(f"not a witness key: {key!r} ({exc})") from exc
        return tuple(keys)

    @model_validator(mode="after")
    def _addresses(self) -> ConsoleSettings:
        object.__setattr__(self, "identity_url", self.identity_url or _stack_url("identity"))
        object.__setattr__(self, "audit_url", self.audit_url or _stack_url("consent"))
        object.__setattr__(self, "retention_url", self.retention_url or _stack_url("retention"))
        if self.witness_quorum > len(self.witness_keys):
            raise ValueError("witness_quorum is larger than the number of pinned witness keys")
        return self

    def master_keyring(self) -> MasterKeyring:
        """The master key and the retired ones, from settings (never from the repository)."""
        retired = tuple(
            MasterKey(key_id, key_bytes(secret))
            for key_id, secret in self.master_keys_retired.items()
            if key_id != self.master_key_id
        )
        return MasterKeyring(MasterKey(self.master_key_id, key_bytes(self.master_key)), retired)

    @property
    def secure_cookie(self) -> bool:
        if self.cookie_secure is not None:
            return self.cookie_secure
        return self.environment is Environment.production
