"""Settings of the retention service, read from `RETENTION_*` environment variables.

The only module of the service that reads the environment. Secrets are `SecretStr` fields with
`dev_secret()` defaults: under `mmgen up` the platform replaces them by random values kept under
the state folder, and production refuses to start with them.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from mmgen.events.topics import DEFAULT_PARTITIONS
from mmgen.platform import ServiceSettings, dev_secret, key_bytes

#: The services that hold personal data and answer erasure orders (DESIGN.md).
DEFAULT_ERASURE_SERVICES: tuple[str, ...] = ("identity", "projects", "profiles", "consent")


class RetentionSettings(ServiceSettings):
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
    #: Ed25519 seed (base64 of 32 bytes) signing erasure receipts and commands; its public key
    #: is served at `/.well-known/jwks.json`. Generate one with `python -c 'import secrets,
    #: base64; print(base64.b64encode(secrets.token_bytes(32)).decode())'`.
    receipt_signing_key: SecretStr = dev_secret("retention-receipt-signing-key")
    #: Public keys (base64url `x` of an Ed25519 JWK) of earlier signing keys, still published
    #: so that receipts signed before a rotation keep verifying.
    receipt_retired_public_keys: tuple[str, ...] = ()
    #: This service's client secret for service tokens (`/internal/` calls); empty under
    #: `mmgen up`, where identity's development file provides it.
    identity_client_secret: SecretStr | None = None
    identity_url: str = "http://127.0.0.1:8001"

    # --- the other services --------------------------------------------------------------------
    #: Services every erasure order must be acknowledged by, and exports collected from.
    erasure_services: tuple[str, ...] = DEFAULT_ERASURE_SERVICES
    #: Base URL of each service's API (`name=url`), for `/internal/subjects/...` calls.
    service_urls: dict[str, str] = Field(
        default_factory=lambda: {
            "identity": "http://127.0.0.1:8001",
            "projects": "http://127.0.0.1:8002",
            "profiles": "http://127.0.0.1:8003",
            "consent": "http://127.0.0.1:8004",
        }
    )
    #: Where the audit log is served (signed heads for receipts): the consent service.
    audit_url: str = "http://127.0.0.1:8004"
    internal_call_timeout_seconds: float = Field(default=5.0, gt=0, le=60)

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

    # --- messaging -------------------------------------------------------------------------------
    topic_partitions: int = Field(default=DEFAULT_PARTITIONS, ge=1, le=256)
    consumer_group: str = "retention"
    consumer_session_timeout_ms: int = Field(default=10_000, ge=1000)
    consumer_heartbeat_interval_ms: int = Field(default=3_000, ge=100)
    relay_lease_ttl_seconds: float = Field(default=10.0, gt=0)

    @field_validator("erasure_services")
    @classmethod
    def _distinct_services(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or len(set(value)) != len(value):
            raise ValueError("erasure_services must name distinct services")
        return value

    @property
    def acknowledgement_timeout(self) -> timedelta:
        return timedelta(seconds=self.acknowledgement_timeout_seconds)

    @property
    def access_package_ttl(self) -> timedelta:
        return timedelta(days=self.access_package_ttl_days)

    def receipt_seed(self) -> bytes:
        """The Ed25519 seed of the receipt signing key (32 bytes)."""
        return key_bytes(self.receipt_signing_key)

    @property
    def events_topic(self) -> str:
        return self.topic("retention.events")

    @property
    def commands_topic(self) -> str:
        return self.topic("retention.commands")

    @property
    def audit_topic(self) -> str:
        return self.topic("audit.log")
