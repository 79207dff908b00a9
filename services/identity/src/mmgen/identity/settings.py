"""Settings of the identity service, read from `IDENTITY_*` environment variables.

The messaging, relay and key settings come from the runtime's `EventServiceSettings`; what is
here is identity's own. Secrets (`master_key`, `blind_index_key`, `service_credentials_key`)
default to `dev_secret(...)` values: under `mmgen up` the platform replaces them by random keys
kept under the state folder, and production refuses to start with them.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from mmgen.platform import dev_secret
from mmgen.runtime.settings import EventServiceSettings

#: OWASP Password Storage Cheat Sheet, argon2id minimum: 19 MiB, 2 iterations, 1 lane.
OWASP_MIN_MEMORY_KIB = 19_456
OWASP_MIN_TIME_COST = 2


class IdentitySettings(EventServiceSettings):
    """Everything identity reads from its environment (prefix `IDENTITY_`)."""

    model_config = SettingsConfigDict(env_prefix="IDENTITY_", extra="ignore", frozen=True)

    service_name: str = "identity"
    port: int = Field(default=8001, ge=0, le=65535)
    mongo_database: str = "identity"
    #: identity verifies its own tokens from its key ring; it never fetches its own JWKS.
    jwks_url: str | None = None

    # --- secrets -----------------------------------------------------------------------------
    #: Wraps the per-subject data keys (crypto-shredding) and the JWT signing keys at rest.
    master_key: SecretStr = dev_secret("identity-master-key")
    #: HMAC key of the email blind index (uniqueness without storing the email in clear).
    blind_index_key: SecretStr = dev_secret("identity-blind-index-key")
    #: Each service's client secret is HMAC(this key, service name): see `service_secret`.
    service_credentials_key: SecretStr = dev_secret("identity-service-credentials-key")
    #: Services that may obtain service tokens (`POST /auth/service-token`).
    service_clients: tuple[str, ...] = (
        "projects",
        "profiles",
        "consent",
        "retention",
        "admin-cli",
    )

    # --- first admin ---------------------------------------------------------------------------
    bootstrap_admin_email: str | None = None
    bootstrap_admin_password: SecretStr | None = None
    bootstrap_admin_name: str = "Administrator"

    # --- tokens --------------------------------------------------------------------------------
    access_token_ttl_seconds: int = Field(default=900, ge=60, le=3600)
    refresh_token_ttl_seconds: int = Field(default=14 * 24 * 3600, ge=300)
    service_token_ttl_seconds: int = Field(default=300, ge=30, le=3600)
    #: How often an instance re-reads the signing keys (another instance may have rotated).
    signing_keys_reload_seconds: float = Field(default=30.0, gt=0)
    #: A token with a well-formed `kid` the ring does not hold reloads it at most this often.
    signing_keys_unknown_kid_reload_seconds: float = Field(default=5.0, ge=0)
    #: A rotated-in key is in the JWKS this long before it signs, so every verifier that
    #: refreshes meanwhile knows it before its first token arrives. Keep it at least
    #: `signing_keys_reload_seconds` (every identity instance learns the schedule) plus the
    #: services' `jwks_min_refresh_interval_seconds` (30 s by default).
    signing_key_publish_seconds: float = Field(default=60.0, ge=0)

    # --- passwords -----------------------------------------------------------------------------
    #: NIST SP 800-63B-4: at least 15 characters for a password used as a single factor.
    password_min_length: int = Field(default=15, ge=8)
    #: NIST asks to allow at least 64; argon2 hashes any length, this bounds the work.
    password_max_length: int = Field(default=256, ge=64, le=4096)
    argon2_memory_kib: int = Field(default=OWASP_MIN_MEMORY_KIB, ge=OWASP_MIN_MEMORY_KIB)
    argon2_time_cost: int = Field(default=OWASP_MIN_TIME_COST, ge=OWASP_MIN_TIME_COST)
    argon2_parallelism: int = Field(default=1, ge=1, le=16)

    # --- throttling of sign-in attempts (adapters/throttle.py) ------------------------------------
    #: A counter starts again after this long without an attempt on it.
    login_failure_window_seconds: int = Field(default=900, ge=1)
    #: Attempts an account (from any address) or an address may make before delays begin.
    login_max_failures_per_account: int = Field(default=5, ge=1)
    login_max_failures_per_address: int = Field(default=50, ge=1)
    #: Past the limit, attempt n waits base * 2^(n - limit) after the previous one, at most max:
    #: a delay, never a lock, so an owner is not kept out of their account.
    login_delay_base_seconds: float = Field(default=2.0, gt=0)
    login_delay_max_seconds: float = Field(default=900.0, gt=0)

    # --- mail (verification and reset tokens, notices) ----------------------------------------
    #: The SMTP server identity's outbox sends through. Unset outside the local stack, identity
    #: refuses to start: registration and password reset cannot work without mail.
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "Multimedia Gen <no-reply@mmgen.invalid>"
    #: STARTTLS with a checked certificate before AUTH; only a local sink goes without.
    smtp_starttls: bool = True
    #: How often the sender looks at the outbox when nothing woke it.
    mail_poll_seconds: float = Field(default=2.0, gt=0)
    #: Where mailed links point (the web app's pages that post the token); unset: token only.
    mail_link_base_url: str | None = None
    email_verification_ttl_seconds: int = Field(default=48 * 3600, ge=300)
    password_reset_ttl_seconds: int = Field(default=3600, ge=300, le=24 * 3600)
    #: Requests that send mail (registration, password reset) per address within the window,
    #: before each further one waits a growing delay (the sign-in throttle's rules): per
    #: mailbox (so nobody floods one) and per client address.
    mail_requests_window_seconds: int = Field(default=3600, ge=1)
    mail_requests_max_per_email: int = Field(default=3, ge=1)
    mail_requests_max_per_address: int = Field(default=20, ge=1)
    #: The issuer authenticator apps show beside the account (the `otpauth://` URI).
    totp_issuer: str = "Multimedia Gen"

    @field_validator("smtp_host", "smtp_username", "mail_link_base_url")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("bootstrap_admin_email")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None
