"""Settings of the retention service, read from `RETENTION_*` environment variables.

The only module of the service that reads the environment. Secrets are `SecretStr` fields with
`dev_secret()` defaults: under `mmgen up` the platform replaces them by random values kept under
the state folder, and production refuses to start with them. Under `mmgen up` the other
services' addresses come from the stack's `MMGEN_<SERVICE>_URL` variables unless
`RETENTION_SERVICE_URLS` names them.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from mmgen.platform import dev_secret, key_bytes
from mmgen.runtime.settings import EventServiceSettings

#: Every service that holds personal data and answers erasure orders (DESIGN.md), retention
#: included: it keeps access packages and what subjects wrote in their requests.
DEFAULT_SERVICES: tuple[str, ...] = ("identity", "projects", "profiles", "consent", "retention")
#: Where each service listens under `mmgen up` with its default port.
DEFAULT_PORTS = {
    "identity": 8001,
    "projects": 8002,
    "profiles": 8003,
    "consent": 8004,
    "retention": 8005,
}


def _stack_url(service: str) -> str:
    """The stack's `MMGEN_<SERVICE>_URL` (set by `mmgen up`), else the default local port."""
    found = os.environ.get(f"MMGEN_{service.upper()}_URL")
    return found or f"http://127.0.0.1:{DEFAULT_PORTS.get(service, 8000)}"


class RetentionSettings(EventServiceSettings):
    """Everything the retention service is configured by."""

    model_config = SettingsConfigDict(env_prefix="RETENTION_", extra="ignore", frozen=True)

    service_name: str = "retention"
    port: int = Field(default=8005, ge=0, le=65535)
    mongo_database: str = "retention"
    jwks_url: str | None = "http://127.0.0.1:8001/.well-known/jwks.json"

    # --- secrets -----------------------------------------------------------------------------
    #: Wraps the per-subject data keys (rectification details, access packages).
    master_key: SecretStr = dev_secret("retention-master-key")
    master_key_id: str = "retention-mk-1"
    #: Ed25519 seed (base64 of 32 bytes) signing erasure receipts; its public key is served at
    #: `/.well-known/jwks.json`. Generate one with `python -c 'import secrets, base64;
    #: print(base64.b64encode(secrets.token_bytes(32)).decode())'`.
    receipt_signing_key: SecretStr = dev_secret("retention-receipt-signing-key")
    #: Public keys (base64url `x` of an Ed25519 JWK) of earlier signing keys, still published
    #: so that receipts signed before a rotation keep verifying.
    receipt_retired_public_keys: tuple[str, ...] = ()
    #: This service's client secret for service tokens (`/internal/` calls); empty under
    #: `mmgen up`, where identity's development file under the state folder provides it.
    identity_client_secret: SecretStr | None = None

    # --- the other services --------------------------------------------------------------------
    #: Services every erasure order must be acknowledged by and exports are collected from
    #: (`RETENTION_SERVICES='["identity","consent","retention"]'` while some are not deployed).
    services: tuple[str, ...] = DEFAULT_SERVICES
    #: Base URL of each service's API (`{"name": "url"}`), for `/internal/subjects/...` calls.
    service_urls: dict[str, str] = Field(default_factory=dict)
    #: Identity (service tokens, re-authentication) and the audit log (signed heads, kept by
    #: consent); default: their entries in `service_urls`.
    identity_url: str | None = None
    audit_url: str | None = None
    internal_call_timeout_seconds: float = Field(default=5.0, gt=0, le=60)

    # --- requests --------------------------------------------------------------------------------
    #: An erasure asked by the subject needs a sign-in this recent (or the password again).
    recent_sign_in_seconds: int = Field(default=300, ge=30, le=3600)

    # --- erasure ---------------------------------------------------------------------------------
    #: A service that has not acknowledged an order (or still shows data) this long after it
    #: is retried, and shown as such on the request.
    acknowledgement_timeout_seconds: float = Field(default=30.0, gt=0)
    #: Orders sent per request before it is left for a person to look at (still shown).
    max_erasure_attempts: int = Field(default=10, ge=1, le=1000)

    # --- access packages -------------------------------------------------------------------------
    #: An access package is deleted this long after it is ready.
    access_package_ttl_days: int = Field(default=30, ge=1, le=90)
    #: Largest export accepted from one service.
    max_export_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)

    # --- scheduler -------------------------------------------------------------------------------
    #: How often policies are evaluated, overdue requests marked and stalled erasures retried.
    scheduler_interval_seconds: float = Field(default=60.0, gt=0)
    #: Most orders one policy run issues (the rest wait for the next run).
    max_orders_per_run: int = Field(default=500, ge=1, le=100_000)
    #: Candidates read per policy per run (bounded reads).
    max_candidates_per_policy: int = Field(default=1000, ge=1, le=100_000)
    #: Resource types the activity projection keeps (those anonymise policies act on).
    activity_resource_types: tuple[str, ...] = ("project",)

    # --- the audit feed --------------------------------------------------------------------------
    #: Consumer group of retention's reader of `audit.log` (activity projection, audit_seq).
    audit_consumer_group: str = ""  # `<topic_prefix>retention-audit` when empty
    #: Audit entries applied per transaction of that reader.
    audit_batch_size: int = Field(default=500, ge=1, le=10_000)
    #: How long the feed waits at a missing seq before it asks consent to publish the entries
    #: again (`audit.republish`); asked again, each wait twice the last, at most every 60 s.
    audit_hole_repair_seconds: float = Field(default=10.0, gt=0)

    @field_validator("services")
    @classmethod
    def _distinct_services(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or len(set(value)) != len(value):
            raise ValueError("services must name distinct services")
        return value

    @model_validator(mode="after")
    def _addresses(self) -> RetentionSettings:
        """Fill in the addresses not given: the stack's, else the default local ports."""
        urls = dict(self.service_urls)
        for name in (*self.services, "identity", "consent"):
            urls.setdefault(name, _stack_url(name))
        object.__setattr__(self, "service_urls", urls)
        object.__setattr__(self, "identity_url", self.identity_url or urls["identity"])
        object.__setattr__(self, "audit_url", self.audit_url or urls["consent"])
        return self

    @property
    def acknowledgement_timeout(self) -> timedelta:
        return timedelta(seconds=self.acknowledgement_timeout_seconds)

    @property
    def access_package_ttl(self) -> timedelta:
        return timedelta(days=self.access_package_ttl_days)

    def receipt_seed(self) -> bytes:
        """The Ed25519 seed of the receipt signing key (32 bytes)."""
        return key_bytes(self.receipt_signing_key)

    @model_validator(mode="after")
    def _audit_group_under_the_prefix(self) -> Self:
        """`<topic_prefix>retention-audit` unless named: installations sharing a cluster under
        different prefixes never share a consumer group."""
        group = self.prefixed_group("retention-audit", self.audit_consumer_group)
        object.__setattr__(self, "audit_consumer_group", group)
        return self
