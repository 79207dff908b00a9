"""Settings of the consent service, read from `CONSENT_*` environment variables.

The only module of the service that reads the environment. Messaging, key and projector
settings come from the runtime's `EventServiceSettings`; consent adds its own master key
default, the tracking gate's limits and the audit log's settings. Secrets are `SecretStr`
fields whose development defaults are refused in production by the platform's validator.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from mmgen.platform import dev_secret
from mmgen.runtime.settings import EventServiceSettings


class ConsentSettings(EventServiceSettings):
    """Everything the consent service (and its audit component) is configured by."""

    model_config = SettingsConfigDict(env_prefix="CONSENT_", extra="ignore", frozen=True)

    service_name: str = "consent"
    port: int = Field(default=8004, ge=0, le=65535)
    mongo_database: str = "consent"
    jwks_url: str | None = "http://127.0.0.1:8001/.well-known/jwks.json"

    #: Wraps the per-subject data keys of personal fields (AES-256-GCM key-encryption key).
    master_key: SecretStr = dev_secret("consent-master-key")
    #: Names the master key in wrapped data keys (stored keys name it: keep it when upgrading).
    master_key_id: str = "consent-mk-1"

    #: Largest accepted analytics event `properties` object, in bytes of its JSON.
    tracking_max_properties_bytes: int = Field(default=4096, ge=64, le=65536)
    #: Stored analytics events kept per subject (oldest dropped beyond it: bounded storage).
    tracking_max_events_per_subject: int = Field(default=1000, ge=1, le=100_000)
    #: Stored events one subject export carries at most (its `events_truncated` says so).
    export_max_events: int = Field(default=1000, ge=1, le=100_000)

    # --- the audit log (mmgen.consent.audit) ---
    #: C2SP note signer key "PRIVATE+KEY+<name>+<id>+<b64>" (generate: `mmgen audit keygen`);
    #: a dev default is derived deterministically from the secret text.
    audit_signing_key: SecretStr = dev_secret("consent-audit-signing-key")
    #: Checkpoint origin line (= the signing key's name).
    audit_origin: str = "mmgen.local/audit"
    #: Sign a tree head at least every N entries ...
    audit_checkpoint_every_entries: int = 1000
    #: ... or every T seconds (when the tree grew).
    audit_checkpoint_every_seconds: float = 10.0
    #: A producer_seq gap open this long becomes a republish request.
    audit_gap_repair_delay_seconds: float = 5.0
    #: Events appended to the audit log per transaction.
    audit_batch_max: int = 1000
    #: Kafka consumer group of the audit projector.
    audit_consumer_group: str = ""  # `<topic_prefix>consent-audit` when empty
    #: One replica writes the log (projector, checkpoints, publisher) under a lease of this
    #: length; a standby takes over within it (plus a quarter) after the leader stops renewing.
    audit_lease_ttl_seconds: float = Field(default=10.0, gt=0)
    #: Entries one `GET /audit/verify` rechecks at most (a longer range is a 422); one
    #: verification runs at a time per replica, off the event loop.
    audit_verify_max_entries: int = Field(default=100_000, ge=1, le=10_000_000)
    #: `GET /audit/stream`s one principal holds open at once per replica (more is a 429).
    audit_streams_per_principal: int = Field(default=2, ge=1, le=100)
    #: An open stream asks this often whether its principal's account was closed or erased.
    audit_stream_recheck_seconds: float = Field(default=5.0, gt=0, le=300)

    # --- witnesses of the audit log (mmgen.consent.audit.witnessing) ---
    #: Witnesses (C2SP tlog-witness) that cosign every signed head: entries separated by commas
    #: or newlines, each `<base URL> <witness verifier key>`. Empty: heads are not witnessed.
    audit_witnesses: str = ""
    #: Seconds one witness may take to answer (a slow one only delays its own cosignature).
    audit_witness_timeout_seconds: float = Field(default=5.0, gt=0, le=120)

    @model_validator(mode="after")
    def _audit_group_under_the_prefix(self) -> Self:
        """`<topic_prefix>consent-audit` unless named: installations sharing a cluster under
        different prefixes never share a consumer group."""
        group = self.prefixed_group("consent-audit", self.audit_consumer_group)
        object.__setattr__(self, "audit_consumer_group", group)
        return self
