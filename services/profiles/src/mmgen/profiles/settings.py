"""Settings of the profiles service, read from `PROFILES_*` environment variables.

The only module of the service that reads the environment. The master key wraps the
creators' data keys (every personal field of a profile is sealed under its creator's key);
its development default is refused in production by the platform's validator.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from mmgen.platform import dev_secret
from mmgen.runtime.settings import EventServiceSettings


class ProfilesSettings(EventServiceSettings):
    """Everything the profiles service is configured by (beyond the runtime's own fields)."""

    model_config = SettingsConfigDict(env_prefix="PROFILES_", extra="ignore", frozen=True)

    service_name: str = "profiles"
    port: int = Field(default=8003, ge=0, le=65535)
    mongo_database: str = "profiles"
    jwks_url: str | None = "http://127.0.0.1:8001/.well-known/jwks.json"

    #: Wraps the per-creator data keys (AES-256-GCM key-encryption key); never shared.
    master_key: SecretStr = dev_secret("profiles-master-key")
    master_key_id: str = "profiles-mk-1"

    #: Search pages: default and largest `limit`.
    page_size_default: int = Field(default=20, ge=1, le=100)
    page_size_max: int = Field(default=50, ge=1, le=200)
    #: Postings read per window of a term's sequence range (one bounded index range).
    search_window: int = Field(default=250, ge=10, le=5_000)
    #: Postings of the rarest term one request may read when results are ordered by recency
    #: (a page can come back short with a cursor to go on: the work per request is bounded).
    search_max_postings: int = Field(default=2_000, ge=10, le=50_000)
    #: Relevance ranking (a `q`) considers the rarest term's most recent postings, up to this
    #: (read as concurrent windows; the other terms checked by signature, then by key).
    search_max_candidates: int = Field(default=500, ge=10, le=20_000)
    #: Ids per `_id $in` lookup when checking candidates against the other terms.
    search_lookup_chunk: int = Field(default=200, ge=10, le=2_000)
    #: Words of `q` (after normalisation) a search accepts; more is refused, never truncated.
    search_max_q_terms: int = Field(default=8, ge=1, le=32)
    #: Stored events of a creator that one export carries.
    export_max_events: int = Field(default=1_000, ge=1, le=100_000)

    @model_validator(mode="after")
    def _page_sizes(self) -> ProfilesSettings:
        if self.page_size_default > self.page_size_max:
            raise ValueError("page_size_default must not exceed page_size_max")
        return self
