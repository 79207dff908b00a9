"""Settings every service shares, read from the environment with one prefix per service.

A service subclasses `ServiceSettings`, sets `env_prefix` (`IDENTITY_`, `CONSENT_`, ...) and adds
its own fields. Secrets (`SecretStr`/`SecretBytes` fields) fail closed, because a service that
boots with a key anyone can compute is worse than one that does not boot:

- a **development secret** is a `dev_secret(...)` default (public: it is in the repository, and
  keys derived from it are SHA-256 of a public string) or a well-known placeholder (`changeme`);
- the local stack (`environment=development`, bound to loopback, with a `state_dir`) replaces
  `dev_secret` defaults by random keys kept under its state folder; nothing else generates them;
- a service refuses to **start** (`ServiceSettings.refuse_development_secrets`, called by the app
  factory and `serve`) while a development secret is left, unless it is that local stack — the
  `test` environment included: tests pass real random secrets (`mmgen.runtime.testing`);
- in production the settings refuse to even load with one.

Each refusal names the variables to set. Secrets may also come from files, one per setting,
named like its variable (`IDENTITY_MASTER_KEY`), in the folder given by `<PREFIX>SECRETS_DIR` or
`MMGEN_SECRETS_DIR` — how containers mount them. This module (and `OtelSettings`) are the only
places that read the environment.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import json
import os
import secrets
from collections.abc import Iterator, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import Field, SecretBytes, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

from mmgen.platform.errors import ConfigurationError

#: Values that are never acceptable as a production secret.
KNOWN_DEV_SECRETS: frozenset[str] = frozenset(
    {
        "",
        "changeme",
        "change-me",
        "changethis",
        "change-this",
        "secret",
        "password",
        "dev",
        "development",
        "test",
        "testing",
        "admin",
        "insecure",
        "default",
    }
)

#: Development defaults written in code start with this, so they are refused in production.
DEV_SECRET_PREFIX = "dev-insecure-"  # noqa: S105 - a marker, not a secret


def dev_secret(name: str) -> SecretStr:
    """A development default for a secret field; production refuses to start with it."""
    return SecretStr(f"{DEV_SECRET_PREFIX}{name}")


def is_development_secret(value: str | bytes) -> bool:
    """True for empty secrets, well-known placeholders and our `dev-insecure-` defaults."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    normalised = text.strip().lower()
    return normalised in KNOWN_DEV_SECRETS or normalised.startswith(DEV_SECRET_PREFIX)


#: The variable naming a folder of secret files for every service (each also has its own).
COMMON_SECRETS_DIR_VARIABLE = "MMGEN_SECRETS_DIR"


def is_loopback_host(host: str) -> bool:
    """True when binding to `host` serves only this machine (127.0.0.0/8, ::1, localhost)."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _secret_values(value: Any) -> Iterator[str | bytes]:
    """The raw secrets inside a field's value (a secret, or a mapping/sequence of secrets)."""
    if isinstance(value, SecretStr | SecretBytes):
        yield value.get_secret_value()
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _secret_values(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _secret_values(item)


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class InsecureSecretError(ConfigurationError, ValueError):
    """A start with an empty or development secret outside the local stack (a ValueError for
    pydantic, so a production settings load fails with it as a validation error)."""


class ServiceSettings(BaseSettings):
    """Fields common to every service; subclass with your own `env_prefix`.

    Example::

        class IdentitySettings(ServiceSettings):
            model_config = SettingsConfigDict(env_prefix="IDENTITY_")
            service_name: str = "identity"
            mongo_database: str = "identity"
            master_key: SecretStr = dev_secret("identity-master-key")
    """

    model_config = SettingsConfigDict(env_prefix="MMGEN_", extra="ignore", frozen=True)

    environment: Environment = Environment.development
    service_name: str = "mmgen"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)

    mongo_uri: str = "mongodb://127.0.0.1:27017/?directConnection=true"
    mongo_database: str = "mmgen"
    kafka_bootstrap: str = "127.0.0.1:9092"
    #: Prepended to every topic name the service uses; tests isolate their topics with it.
    topic_prefix: str = ""

    #: Identity's JWKS; None when the service verifies with an in-process key set (identity).
    jwks_url: str | None = None
    jwt_issuer: str = "mmgen-identity"
    #: The `aud` this service requires in an access token: its own name unless set, so a
    #: token identity issued for another service is refused here (see `auth.audiences`).
    jwt_audience: str = ""
    jwt_leeway_seconds: int = Field(default=5, ge=0, le=300)
    #: The longest lifetime (`exp - iat`) of an access token this service accepts (RFC 8725):
    #: a token minted for ten years is refused even with a valid signature.
    jwt_max_lifetime_seconds: int = Field(default=3600, ge=60, le=24 * 3600)
    #: An unknown `kid` triggers a JWKS refresh at most this often (protects identity).
    jwks_min_refresh_interval_seconds: float = Field(default=30.0, ge=0)
    #: Cached keys are refreshed after this age, so a withdrawn key stops verifying.
    jwks_max_age_seconds: float = Field(default=300.0, gt=0)

    #: The local state folder (`.mmgen/` under `mmgen up`); development secrets left at their
    #: `dev_secret()` default are generated once and kept under it (in development, on a
    #: loopback host only), so a local stack gets real random keys that survive restarts
    #: without any secret in the repository.
    state_dir: Path | None = None
    #: A folder of secret files, one per setting, named like its variable (`<PREFIX>MASTER_KEY`);
    #: read from `<PREFIX>SECRETS_DIR`, else `MMGEN_SECRETS_DIR`. A value given in the
    #: environment wins over a file. Shown here for the record: it is resolved before the fields.
    secrets_dir: Path | None = None
    #: Peers whose `X-Forwarded-For` is believed (addresses or CIDR networks of the gateway);
    #: from anyone else the header is ignored. Empty: the TCP peer is the client.
    trusted_proxies: tuple[str, ...] = ()

    #: Anonymous and invalid-token refusals are audited as one sampled entry per route, status
    #: and code per this many seconds (each one is counted in `access_denials_total`).
    denial_sample_seconds: float = Field(default=60.0, ge=0)

    max_body_bytes: int = Field(default=1_048_576, ge=0)
    readiness_timeout_seconds: float = Field(default=2.0, gt=0)
    log_level: str = "INFO"
    log_json: bool = True

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the environment, then secret files from the configured folder."""
        folder = _configured_secrets_dir(cls)
        if folder is None:
            return (init_settings, env_settings, dotenv_settings, file_secret_settings)
        if not folder.is_dir():
            raise InsecureSecretError(
                f"the secrets folder {folder} (from {_secrets_dir_variable(cls)}) is not a "
                "directory: refusing to start without the secrets it should hold"
            )
        files = SecretsSettingsSource(settings_cls, secrets_dir=folder)
        return (init_settings, env_settings, dotenv_settings, files)

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            ipaddress.ip_network(entry.strip(), strict=False)  # ValueError names it
        return tuple(entry.strip() for entry in value)

    @property
    def is_local_stack(self) -> bool:
        """Development on a loopback host with a state folder: what `mmgen up` runs."""
        return (
            self.environment is Environment.development
            and self.state_dir is not None
            and is_loopback_host(self.host)
        )

    def development_secrets(self) -> list[str]:
        """The variables of secret settings holding an empty or development value."""
        return sorted(
            self.env_name(name)
            for name in type(self).model_fields
            if any(is_development_secret(raw) for raw in _secret_values(getattr(self, name)))
        )

    def refuse_development_secrets(self) -> None:
        """Fail closed before serving: `InsecureSecretError` naming every development secret,
        unless this is the local stack (whose `dev_secret` defaults were replaced already)."""
        offenders = self.development_secrets()
        if not offenders or self.is_local_stack:
            return
        prefix = str(self.model_config.get("env_prefix") or "")
        raise InsecureSecretError(
            f"refusing to start ({self.environment}, host {self.host}, "
            f"state folder {self.state_dir or 'none'}) with empty or development secrets: "
            + ", ".join(offenders)
            + " — development secrets are public; only the local stack (development, bound to "
            "loopback, with a state folder) may use them. Set each one in the environment or "
            f"as a file of that name in {prefix}SECRETS_DIR or {COMMON_SECRETS_DIR_VARIABLE}"
        )

    def topic(self, name: str) -> str:
        """The full Kafka topic name for `name` (e.g. `identity.events`) under `topic_prefix`."""
        return f"{self.topic_prefix}{name}"

    def env_name(self, field: str) -> str:
        """The environment variable that sets `field` (for error messages and docs)."""
        prefix = str(self.model_config.get("env_prefix") or "")
        return f"{prefix}{field}".upper()

    @model_validator(mode="after")
    def _own_audience(self) -> ServiceSettings:
        if not self.jwt_audience:
            object.__setattr__(self, "jwt_audience", self.service_name)
        return self

    @model_validator(mode="after")
    def _record_secrets_dir(self) -> ServiceSettings:
        if self.secrets_dir is None:
            object.__setattr__(self, "secrets_dir", _configured_secrets_dir(type(self)))
        return self

    @model_validator(mode="after")
    def _generate_development_secrets(self) -> ServiceSettings:
        """Replace `dev_secret()` defaults by random values persisted under `state_dir` — for
        the local stack only: anywhere else they stay, and the service refuses to start."""
        if not self.is_local_stack or self.state_dir is None:
            return self
        pending = [
            name
            for name in type(self).model_fields
            if isinstance(value := getattr(self, name), SecretStr)
            and value.get_secret_value().startswith(DEV_SECRET_PREFIX)
        ]
        if not pending:
            return self
        stored = _load_or_create_dev_secrets(
            self.state_dir / "secrets" / f"{self.service_name}.json", pending
        )
        for name in pending:
            object.__setattr__(self, name, SecretStr(stored[name]))
        return self

    @model_validator(mode="after")
    def _refuse_development_secrets_in_production(self) -> ServiceSettings:
        if self.environment is not Environment.production:
            return self
        offenders = self.development_secrets()
        if offenders:
            raise InsecureSecretError(
                "refusing to start in production with empty or development-default secrets: "
                + ", ".join(offenders)
                + " — set real values (generated, kept out of the repository)"
            )
        return self


def _secrets_dir_variable(cls: type[BaseSettings]) -> str:
    prefix = str(cls.model_config.get("env_prefix") or "").upper()
    own = f"{prefix}SECRETS_DIR"
    return own if os.environ.get(own) else COMMON_SECRETS_DIR_VARIABLE


def _configured_secrets_dir(cls: type[BaseSettings]) -> Path | None:
    """The secrets folder named by `<PREFIX>SECRETS_DIR`, else `MMGEN_SECRETS_DIR`, if any."""
    value = os.environ.get(_secrets_dir_variable(cls), "").strip()
    return Path(value).expanduser() if value else None


def _load_or_create_dev_secrets(path: Path, names: list[str]) -> dict[str, str]:
    """Read the service's generated secrets, adding any missing one (32 random bytes, base64url)."""
    try:
        stored: dict[str, str] = json.loads(path.read_text())
    except FileNotFoundError:
        stored = {}
    missing = [name for name in names if name not in stored]
    if missing:
        for name in missing:
            stored[name] = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii")
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(stored, handle, indent=2)
        tmp.replace(path)
    return stored


def key_bytes(secret: SecretStr, *, size: int = 32) -> bytes:
    """Key material from a secret setting: base64 (standard or url-safe) of exactly `size` bytes.

    A `dev_secret()` default is stretched with SHA-256, so unit tests that wire a service over
    fakes without serving it run the same code; such a key is public, which is why a service
    refuses to start with one (`ServiceSettings.refuse_development_secrets`).
    """
    text = secret.get_secret_value().strip()
    if text.startswith(DEV_SECRET_PREFIX):
        return hashlib.sha256(text.encode("utf-8")).digest()[:size]
    padded = text + "=" * (-len(text) % 4)
    for decode in (base64.urlsafe_b64decode, base64.b64decode):
        try:
            raw = decode(padded)
        except (binascii.Error, ValueError):
            continue
        if len(raw) == size:
            return raw
    raise InsecureSecretError(
        f"a key setting must be base64 of exactly {size} random bytes "
        f"(generate one with: python -c 'import secrets,base64;"
        f"print(base64.b64encode(secrets.token_bytes({size})).decode())')"
    )


class OtelSettings(BaseSettings):
    """The standard OpenTelemetry variables, under their own names (OTEL_*)."""

    model_config = SettingsConfigDict(env_prefix="OTEL_", extra="ignore", frozen=True)

    exporter_otlp_endpoint: str | None = None
    exporter_otlp_traces_endpoint: str | None = None
    sdk_disabled: bool = False
    service_name: str | None = None

    @property
    def export_enabled(self) -> bool:
        """Spans are exported only when an OTLP endpoint is configured."""
        if self.sdk_disabled:
            return False
        return bool(self.exporter_otlp_endpoint or self.exporter_otlp_traces_endpoint)
