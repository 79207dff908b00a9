"""Settings every event-sourced service shares on top of the platform's `ServiceSettings`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from mmgen.events.kafka_security import KafkaSecurity, KafkaSecurityError
from mmgen.events.keys import MasterKey, MasterKeyring
from mmgen.events.topics import DEFAULT_PARTITIONS
from mmgen.platform import ServiceSettings, dev_secret
from mmgen.platform.settings import key_bytes

LOCAL_BROKER_FETCH_MAX_WAIT_MS = 250
"""A consumer's fetch wait on the local broker: a record waits 39 ms on average (p95 113 ms)
against 71 ms (p95 227 ms) at Kafka's default of 500, for twice the CPU spent on idle fetches
(bench/results/broker_fetch_wait.json); 100 ms halved the wait again but made the system
tests a third slower with three stacks on two cores."""


class EventServiceSettings(ServiceSettings):
    """Messaging and key settings read by `ServiceRuntime` (each service keeps its prefix).

    A subclass overrides `master_key` with its own `dev_secret(...)` default, so two services
    on one development machine never share a key.
    """

    #: Wraps the per-owner data keys of personal fields (crypto-shredding).
    master_key: SecretStr = dev_secret("master-key")
    #: Names the master key in wrapped data keys (change it when rotating).
    master_key_id: str = "mk-1"
    #: Earlier master keys, `{key_id: base64 key}`, still able to unwrap data keys until
    #: `mmgen admin rotate-master-key` has re-wrapped every one under the current key.
    master_keys_retired: dict[str, SecretStr] = Field(default_factory=dict)
    #: The platform's one partition count for every topic a service creates.
    topic_partitions: int = Field(default=DEFAULT_PARTITIONS, ge=1, le=256)
    #: Consumer group of the service's inbox (commands and other services' events); by default
    #: `<topic_prefix><service>-inbox`, so installations sharing a cluster under different
    #: prefixes never share a group (a member of one would stall the other's rebalances).
    consumer_group: str | None = None
    #: Group joins on the local broker take about half the session timeout; tests shorten it.
    consumer_session_timeout_ms: int = Field(default=10_000, ge=1_000)
    consumer_heartbeat_interval_ms: int = Field(default=3_000, ge=100)
    #: Longest a fetch waits on the broker for new records. Kafka answers as soon as one
    #: arrives, so this costs no latency there; the local broker answers only when the wait
    #: ends, so the local stack shortens it (`LOCAL_BROKER_FETCH_MAX_WAIT_MS`) unless it is set.
    consumer_fetch_max_wait_ms: int = Field(default=500, ge=10, le=30_000)
    #: Relay: longest wait for an append before polling again; lease a successor waits out.
    relay_idle_wait_seconds: float = Field(default=1.0, gt=0)
    relay_lease_ttl_seconds: float = Field(default=10.0, gt=0)
    #: The relay's head is announced when it moves and at least this often (tail-gap repair).
    heads_idle_interval_seconds: float = Field(default=10.0, gt=0)
    #: How long a data key stays cached in the process (a shred evicts it at once).
    key_cache_ttl_seconds: float = Field(default=30.0, ge=0)
    #: Longest wait of a read-model projector for an append before polling again.
    projector_idle_wait_seconds: float = Field(default=1.0, gt=0)

    #: How every Kafka client of the service connects: `PLAINTEXT` (the local broker), `SSL`,
    #: `SASL_PLAINTEXT` or `SASL_SSL`; with SASL, a mechanism (`SCRAM-SHA-512`, `SCRAM-SHA-256`,
    #: `PLAIN`), a username and a password; with TLS, the CA file the brokers' certificates are
    #: checked against (default: the system's CAs).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None

    #: Retention's public keys that sign `retention.commands` (base64url `x` of its Ed25519
    #: JWKs), pinned; when given, `retention_jwks_url` is not used.
    retention_command_keys: tuple[str, ...] = ()
    #: Retention's `/.well-known/jwks.json`, from which command keys are fetched when none is
    #: pinned. The local stack defaults to its retention; anywhere else a service that obeys
    #: commands refuses to start with neither set (`command_keys_setting_missing`).
    retention_jwks_url: str | None = None

    @model_validator(mode="after")
    def _local_broker_fetch_wait(self) -> EventServiceSettings:
        """Every hop through the local broker waits out a fetch's whole wait (measured in
        libs/localstack/README.md): the local stack waits less unless told otherwise."""
        if self.is_local_stack and "consumer_fetch_max_wait_ms" not in self.model_fields_set:
            object.__setattr__(self, "consumer_fetch_max_wait_ms", LOCAL_BROKER_FETCH_MAX_WAIT_MS)
        return self

    @model_validator(mode="after")
    def _local_retention_jwks(self) -> EventServiceSettings:
        """The local stack's retention (`MMGEN_RETENTION_URL`, set by `mmgen up`) signs its
        commands when nothing else is configured."""
        if self.is_local_stack and not self.retention_command_keys and not self.retention_jwks_url:
            base = os.environ.get("MMGEN_RETENTION_URL") or "http://127.0.0.1:8005"
            object.__setattr__(
                self, "retention_jwks_url", f"{base.rstrip('/')}/.well-known/jwks.json"
            )
        return self

    @model_validator(mode="after")
    def _kafka_security_is_whole(self) -> EventServiceSettings:
        """Fail at load, naming the variables, rather than at the first connection."""
        try:
            self.kafka_security()
        except KafkaSecurityError as exc:
            raise ValueError(
                f"{self.env_name('kafka_security_protocol')} and its companions: {exc}"
            ) from exc
        return self

    def kafka_security(self) -> KafkaSecurity:
        """The one security value every Kafka client of the service is made with."""
        password = self.kafka_sasl_password
        return KafkaSecurity(
            protocol=self.kafka_security_protocol,
            mechanism=self.kafka_sasl_mechanism,
            username=self.kafka_sasl_username,
            password=password.get_secret_value() if password is not None else None,
            ca_file=str(self.kafka_ssl_cafile) if self.kafka_ssl_cafile else None,
        )

    def command_keys_setting_missing(self) -> str | None:
        """The message naming the settings to give when neither names retention's keys."""
        if self.retention_command_keys or self.retention_jwks_url:
            return None
        return (
            f"{self.env_name('retention_jwks_url')} or {self.env_name('retention_command_keys')} "
            "must name retention's command-signing keys: without them no erasure command can be "
            "verified, and none is obeyed"
        )

    def prefixed_group(self, name: str, configured: str | None = None) -> str:
        """A consumer group: `configured` when set, else `<topic_prefix><name>`, so that
        installations sharing a cluster under different prefixes never share a group."""
        return configured or f"{self.topic_prefix}{name}"

    @property
    def inbox_group(self) -> str:
        """The consumer group of the inbox's subscription to other services' events."""
        return self.prefixed_group(f"{self.service_name}-inbox", self.consumer_group)

    @property
    def commands_group(self) -> str:
        """The consumer group of the inbox's own subscription to `retention.commands`."""
        return f"{self.inbox_group}-commands"

    def master_keyring(self) -> MasterKeyring:
        """The master key and the retired ones, from settings (never from the repository)."""
        retired = tuple(
            MasterKey(key_id, key_bytes(secret))
            for key_id, secret in self.master_keys_retired.items()
            if key_id != self.master_key_id
        )
        return MasterKeyring(MasterKey(self.master_key_id, key_bytes(self.master_key)), retired)
