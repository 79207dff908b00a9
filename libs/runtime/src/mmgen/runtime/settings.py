"""Settings every event-sourced service shares on top of the platform's `ServiceSettings`."""

from __future__ import annotations

from pydantic import Field, SecretStr

from mmgen.events.keys import MasterKey, MasterKeyring
from mmgen.events.topics import DEFAULT_PARTITIONS
from mmgen.platform import ServiceSettings, dev_secret
from mmgen.platform.settings import key_bytes


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
    #: Consumer group of the service's inbox (commands and other services' events).
    consumer_group: str | None = None
    #: Group joins on the local broker take about half the session timeout; tests shorten it.
    consumer_session_timeout_ms: int = Field(default=10_000, ge=1_000)
    consumer_heartbeat_interval_ms: int = Field(default=3_000, ge=100)
    #: Relay: longest wait for an append before polling again; lease a successor waits out.
    relay_idle_wait_seconds: float = Field(default=1.0, gt=0)
    relay_lease_ttl_seconds: float = Field(default=10.0, gt=0)
    #: The relay's head is announced when it moves and at least this often (tail-gap repair).
    heads_idle_interval_seconds: float = Field(default=10.0, gt=0)
    #: How long a data key stays cached in the process (a shred evicts it at once).
    key_cache_ttl_seconds: float = Field(default=30.0, ge=0)
    #: Longest wait of a read-model projector for an append before polling again.
    projector_idle_wait_seconds: float = Field(default=1.0, gt=0)

    @property
    def inbox_group(self) -> str:
        return self.consumer_group or f"{self.service_name}-inbox"

    def master_keyring(self) -> MasterKeyring:
        """The master key and the retired ones, from settings (never from the repository)."""
        retired = tuple(
            MasterKey(key_id, key_bytes(secret))
            for key_id, secret in self.master_keys_retired.items()
            if key_id != self.master_key_id
        )
        return MasterKeyring(MasterKey(self.master_key_id, key_bytes(self.master_key)), retired)
