"""Settings of the projects service, read from `PROJECTS_*` environment variables.

The only module of the service that reads the environment. Messaging, key and projector
settings come from the runtime's `EventServiceSettings`; projects adds its own master key
default, the file limits and the page sizes. The master key is a `SecretStr` whose
development default the platform refuses in production.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from mmgen.platform import dev_secret
from mmgen.projects.domain.content_types import SIGNATURES, normalise_content_type
from mmgen.runtime.settings import EventServiceSettings

MIB = 1024 * 1024
#: Every content type the service can check against the bytes' own signature.
DEFAULT_CONTENT_TYPES: tuple[str, ...] = tuple(SIGNATURES)


class ProjectsSettings(EventServiceSettings):
    """Everything the projects service is configured by (prefix `PROJECTS_`)."""

    model_config = SettingsConfigDict(env_prefix="PROJECTS_", extra="ignore", frozen=True)

    service_name: str = "projects"
    port: int = Field(default=8002, ge=0, le=65535)
    mongo_database: str = "projects"
    jwks_url: str | None = "http://127.0.0.1:8001/.well-known/jwks.json"

    #: Wraps the per-owner data keys (`subject:<id>`, `project:<id>`): AES-256-GCM KEK.
    master_key: SecretStr = dev_secret("projects-master-key")
    #: Names the master key in wrapped data keys (stored keys name it: keep it when upgrading).
    master_key_id: str = "projects-mk-1"

    # --- files ----------------------------------------------------------------------------
    #: Largest accepted file, in bytes, counted while the upload streams in (413 beyond).
    max_file_bytes: int = Field(default=25 * MIB, ge=1, le=4096 * MIB)
    #: Content types accepted for upload; each is checked against the file's own signature.
    allowed_content_types: Annotated[tuple[str, ...], NoDecode] = DEFAULT_CONTENT_TYPES
    #: Plaintext bytes per stored (encrypted) chunk. Bounds the memory of an upload and a
    #: download; below MongoDB's 16 MiB document limit with room for the envelope.
    file_chunk_bytes: int = Field(default=256 * 1024, ge=16 * 1024, le=8 * MIB)
    #: Chunks read from the database per round trip while a download streams.
    file_read_window_chunks: int = Field(default=4, ge=1, le=64)
    #: An upload unfinished after this long is a crash's leftover: its chunks are purged.
    stale_upload_seconds: int = Field(default=3600, ge=60)
    #: How often the service looks for such leftovers.
    stale_upload_sweep_seconds: float = Field(default=600.0, gt=0)

    # --- pages ----------------------------------------------------------------------------
    projects_page_default: int = Field(default=20, ge=1, le=200)
    projects_page_max: int = Field(default=100, ge=1, le=500)
    messages_page_default: int = Field(default=50, ge=1, le=200)
    messages_page_max: int = Field(default=200, ge=1, le=1000)
    files_page_default: int = Field(default=50, ge=1, le=200)
    files_page_max: int = Field(default=200, ge=1, le=1000)

    #: Most records of one kind an export or a footprint reads for one subject.
    export_max_records: int = Field(default=10_000, ge=1)

    @field_validator("allowed_content_types", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        """Accept `a,b,c` from the environment as well as a JSON list."""
        if isinstance(value, str) and not value.lstrip().startswith("["):
            return tuple(part for part in (p.strip() for p in value.split(",")) if part)
        return value

    @field_validator("allowed_content_types")
    @classmethod
    def _known_signatures(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        """Only types whose signature the service can check: anything else would be trusted
        on the client's word."""
        normalised = tuple(dict.fromkeys(normalise_content_type(v) for v in value))
        unknown = [v for v in normalised if v not in SIGNATURES]
        if unknown:
            raise ValueError(f"no signature check for {unknown}; choose among {sorted(SIGNATURES)}")
        if not normalised:
            raise ValueError("allow at least one content type")
        return normalised
