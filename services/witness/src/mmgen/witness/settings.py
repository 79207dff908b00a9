"""Settings of the witness, read from `WITNESS_*` environment variables.

The witness needs three things: its own key (`WITNESS_SIGNING_KEY`), the public keys of the
logs it witnesses (`WITNESS_LOG_KEYS`) and a folder for its state (`WITNESS_STORE_DIR`, or
`witness/` under `WITNESS_STATE_DIR`). The signing key defaults to a development secret: under
`mmgen up` the platform replaces it by a random seed kept under the state folder, and
production refuses to start with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from mmgen.auditlog.checkpoint import NoteSigner, NoteVerifier
from mmgen.auditlog.cosignature import CosignatureSigner
from mmgen.auditlog.errors import KeyMalformedError
from mmgen.platform import ServiceSettings, dev_secret
from mmgen.platform.errors import ConfigurationError
from mmgen.platform.settings import key_bytes

DEFAULT_NAME = "mmgen.local/witness"
STORE_FOLDER = "witness"


class WitnessSettings(ServiceSettings):
    """Everything the witness reads from its environment (prefix `WITNESS_`)."""

    model_config = SettingsConfigDict(env_prefix="WITNESS_", extra="ignore", frozen=True)

    service_name: str = "witness"
    port: int = Field(default=8009, ge=0, le=65535)
    #: No bearer tokens: C2SP witnesses authenticate the checkpoint's signature, not callers.
    jwks_url: str | None = None
    #: A request is an old size, at most 63 hashes and one note: a few KiB.
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)

    #: The witness's name: the key name of its cosignatures (a schema-less URL, C2SP).
    #: Used with a bare seed; a `PRIVATE+KEY+<name>+…` key carries its own name.
    name: str = DEFAULT_NAME
    #: The cosigning key: `PRIVATE+KEY+<name>+<id>+<b64>` (`mmgen-witness keygen`), base64 of
    #: a 32-byte Ed25519 seed, or `@/path/to/file` holding either.
    signing_key: SecretStr = dev_secret("witness-signing-key")
    #: Verifier keys (`<origin>+<id>+<b64>`) of the logs this witness cosigns, separated by
    #: commas or whitespace. A log is known by its origin line, which is its key's name.
    log_keys: Annotated[tuple[str, ...], NoDecode] = ()
    #: The witness's own state (latest cosigned checkpoint of every log, evidence of refused
    #: ones). Default: `witness/` under `WITNESS_STATE_DIR`.
    store_dir: Path | None = None

    @field_validator("log_keys", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        """Accept `key1,key2` or `key1 key2` from the environment as well as a JSON list."""
        if isinstance(value, str) and not value.lstrip().startswith("["):
            return tuple(part for part in value.replace(",", " ").split() if part)
        return value

    @field_validator("log_keys")
    @classmethod
    def _parse_keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for key in value:
            try:
                NoteVerifier.from_string(key)
            except KeyMalformedError as exc:
                raise ValueError(f"not a log verifier key: {key!r} ({exc})") from exc
        return value

    def log_verifiers(self) -> list[NoteVerifier]:
        return [NoteVerifier.from_string(key) for key in self.log_keys]

    def signer(self) -> CosignatureSigner:
        """The cosigning key from `signing_key` (read from its file for `@…`)."""
        secret = self.signing_key.get_secret_value().strip()
        if secret.startswith("@"):
            path = Path(secret[1:]).expanduser()
            try:
                secret = path.read_text().strip()
            except OSError as exc:
                raise ConfigurationError(
                    f"{self.env_name('signing_key')}: cannot read {path}: {exc}"
                ) from exc
        try:
            if secret.startswith("PRIVATE+KEY+"):
                return CosignatureSigner.from_string(secret)
            return CosignatureSigner(self.name, key_bytes(SecretStr(secret)))
        except (KeyMalformedError, ValueError) as exc:
            raise ConfigurationError(f"{self.env_name('signing_key')}: {exc}") from exc

    def store_path(self) -> Path:
        if self.store_dir is not None:
            return self.store_dir
        if self.state_dir is not None:
            return self.state_dir / STORE_FOLDER
        raise ConfigurationError(
            f"set {self.env_name('store_dir')} (or {self.env_name('state_dir')}): "
            "the witness must keep what it cosigned"
        )


def generate_signing_key(name: str = DEFAULT_NAME) -> str:
    """A new cosigning key in the `PRIVATE+KEY+…` form (keep it secret, 0600)."""
    return NoteSigner.generate(name).to_string()
