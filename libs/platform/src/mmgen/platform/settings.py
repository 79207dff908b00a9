"""Settings every service shares, read from the environment with one prefix per service.

A service subclasses `ServiceSettings`, sets `env_prefix` (`IDENTITY_`, `CONSENT_`, ...) and adds
its own fields. Secret fields (`SecretStr`/`SecretBytes`) are checked at start-up: in
production an empty secret or a known development default refuses to start, naming the
variable, because a service that boots with `changeme` as its master key is worse than one that
does not boot. This module (and `OtelSettings`) are the only places that read the environment.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import Field, SecretBytes, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mmgen.platform.errors import PlatformError

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


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class InsecureSecretError(PlatformError, ValueError):
    """A production start with an empty or development secret (a ValueError for pydantic)."""


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
    jwt_audience: str = "mmgen"
    jwt_leeway_seconds: int = Field(default=5, ge=0, le=300)
    #: An unknown `kid` triggers a JWKS refresh at most this often (protects identity).
    jwks_min_refresh_interval_seconds: float = Field(default=30.0, ge=0)
    #: Cached keys are refreshed after this age, so a withdrawn key stops verifying.
    jwks_max_age_seconds: float = Field(default=300.0, gt=0)

    #: The local state folder (`.mmgen/` under `mmgen up`); development secrets left at their
    #: `dev_secret()` default are generated once and kept under it, so a local stack gets
    #: real random keys that survive restarts without any secret in the repository.
    state_dir: Path | None = None

    max_body_bytes: int = Field(default=1_048_576, ge=0)
    readiness_timeout_seconds: float = Field(default=2.0, gt=0)
    log_level: str = "INFO"
    log_json: bool = True

    def topic(self, name: str) -> str:
        """The full Kafka topic name for `name` (e.g. `identity.events`) under `topic_prefix`."""
        return f"{self.topic_prefix}{name}"

    def env_name(self, field: str) -> str:
        """The environment variable that sets `field` (for error messages and docs)."""
        prefix = str(self.model_config.get("env_prefix") or "")
        return f"{prefix}{field}".upper()

    @model_validator(mode="after")
    def _generate_development_secrets(self) -> ServiceSettings:
        """Replace `dev_secret()` defaults by random values persisted under `state_dir`."""
        if self.environment is not Environment.development or self.state_dir is None:
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
        offenders: list[str] = []
        for name in type(self).model_fields:
            value: Any = getattr(self, name)
            if isinstance(value, SecretStr):
                raw: str | bytes = value.get_secret_value()
            elif isinstance(value, SecretBytes):
                raw = value.get_secret_value()
            else:
                continue
            if is_development_secret(raw):
                offenders.append(self.env_name(name))
        if offenders:
            raise InsecureSecretError(
                "refusing to start in production with empty or development-default secrets: "
                + ", ".join(sorted(offenders))
                + " — set real values (generated, kept out of the repository)"
            )
        return self


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

    A `dev_secret()` default (tests, or development without a state folder) is stretched with
    SHA-256 so code paths stay the same; production refuses those defaults at start-up.
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
