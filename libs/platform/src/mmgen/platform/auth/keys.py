"""Ed25519 keys for JWTs: signing keys, JWK/JWKS (de)serialisation, and key sets by `kid`.

Identity signs with a `SigningKey` and serves `jwks_document(...)` at
`GET /.well-known/jwks.json`; every other service verifies through a `JwksKeySet` that fetches
that document, caches keys by `kid` and refreshes on an unknown one — at most once per
`min_refresh_interval`, so a stream of made-up `kid`s cannot make us hammer identity.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import secrets
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from mmgen.platform.auth.audiences import SERVICE_AUDIENCES, allowed_audiences
from mmgen.platform.auth.errors import SigningKeysUnavailableError
from mmgen.platform.http import service_client

logger = logging.getLogger("mmgen.platform.auth")

ALGORITHM = "EdDSA"
#: The header `typ` of an access token (RFC 9068), required by verifiers (RFC 8725 §3.11).
ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - a media type, not a secret
#: A JWKS bigger than this is refused (a sane key set is a few hundred bytes).
MAX_JWKS_BYTES = 64 * 1024
#: What a `kid` may look like: checked before any lookup, so a made-up one costs nothing.
KID_PATTERN = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


def well_formed_kid(kid: object) -> bool:
    """True for a `kid` of the form keys are given (1 to 64 of `A-Z a-z 0-9 _ . -`)."""
    return isinstance(kid, str) and KID_PATTERN.fullmatch(kid) is not None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_key_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_jwk(kid: str, key: Ed25519PublicKey) -> dict[str, str]:
    """The RFC 8037 JWK of an Ed25519 public key."""
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": _b64url(public_key_bytes(key)),
        "kid": kid,
        "alg": ALGORITHM,
        "use": "sig",
    }


def jwks_document(keys: Mapping[str, Ed25519PublicKey]) -> dict[str, list[dict[str, str]]]:
    """The body of `GET /.well-known/jwks.json` for these verification keys."""
    return {"keys": [public_jwk(kid, key) for kid, key in keys.items()]}


def parse_jwks(document: Any) -> dict[str, Ed25519PublicKey]:
    """Ed25519 keys of a JWKS by `kid`; entries of any other kind are ignored, not trusted."""
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ValueError("a JWKS is an object with a 'keys' array")
    keys: dict[str, Ed25519PublicKey] = {}
    for entry in document["keys"]:
        if not isinstance(entry, Mapping):
            continue
        if entry.get("kty") != "OKP" or entry.get("crv") != "Ed25519":
            continue
        if entry.get("alg", ALGORITHM) != ALGORITHM or entry.get("use", "sig") != "sig":
            continue
        kid, x = entry.get("kid"), entry.get("x")
        if not well_formed_kid(kid) or not isinstance(x, str):
            continue
        assert isinstance(kid, str)
        try:
            keys[kid] = Ed25519PublicKey.from_public_bytes(_b64url_decode(x))
        except ValueError:
            logger.warning("ignoring a malformed Ed25519 JWK", extra={"kid": kid})
    return keys


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 private key with its `kid`; identity signs tokens with it (tests too)."""

    kid: str
    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls, kid: str | None = None) -> SigningKey:
        return cls(kid or uuid.uuid4().hex, Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, kid: str, raw: bytes) -> SigningKey:
        """From the 32-byte raw private key (how a secret setting would hold it)."""
        return cls(kid, Ed25519PrivateKey.from_private_bytes(raw))

    def private_bytes(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    def public_jwk(self) -> dict[str, str]:
        return public_jwk(self.kid, self.public_key)

    def sign(self, claims: Mapping[str, Any], *, typ: str | None = None) -> str:
        """A compact JWS (EdDSA) over `claims`, with this key's `kid` (and `typ`) in the header."""
        headers: dict[str, Any] = {"kid": self.kid}
        if typ is not None:
            headers["typ"] = typ
        return jwt.encode(dict(claims), self.private_key, algorithm=ALGORITHM, headers=headers)


def issue_token(
    key: SigningKey,
    *,
    subject: str,
    role: str,
    issuer: str = "mmgen-identity",
    audience: str | Sequence[str] | None = None,
    ttl: timedelta = timedelta(minutes=15),
    now: datetime | None = None,
    extra_claims: Mapping[str, Any] | None = None,
    typ: str = ACCESS_TOKEN_TYPE,
    amr: Sequence[str] | None = None,
    auth_time: datetime | None = None,
) -> str:
    """An access token as verifiers require it: header `typ: at+jwt` and `kid`, claims
    `exp iat iss aud sub role jti`, `amr` (RFC 8176) when the methods are given and
    `auth_time` (when the person signed in, OpenID Connect Core §2) when given: a refreshed
    token has a new `iat` but keeps its sign-in's `auth_time`, which is what "signed in
    recently" must read
    (`typ`/`extra_claims` let tests forge the other kinds). `aud`: the `audience` given (a
    list, or a single string as other issuers send it), else the list of every service the role
    may use (`audiences.allowed_audiences`; every service for a role the table does not know,
    so tests can forge such tokens)."""
    issued = now or datetime.now(UTC)
    if audience is None:
        audiences: list[str] | str = list(allowed_audiences(role) or SERVICE_AUDIENCES)
    elif isinstance(audience, str):
        audiences = audience
    else:
        audiences = list(audience)
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audiences,
        "sub": subject,
        "role": role,
        "iat": int(issued.timestamp()),
        "exp": int((issued + ttl).timestamp()),
        "jti": secrets.token_hex(16),
    }
    if amr is not None:
        claims["amr"] = list(amr)
    if auth_time is not None:
        claims["auth_time"] = int(auth_time.timestamp())
    claims.update(extra_claims or {})
    return key.sign(claims, typ=typ)


@runtime_checkable
class KeySet(Protocol):
    """Port: the verification key for a `kid`, or None when there is none."""

    async def get(self, kid: str) -> Ed25519PublicKey | None: ...


class StaticKeySet:
    """Keys held in the process: identity's own verification keys, and tests."""

    def __init__(self, keys: Mapping[str, Ed25519PublicKey] | None = None) -> None:
        self._keys: dict[str, Ed25519PublicKey] = dict(keys or {})

    @classmethod
    def of(cls, *signing_keys: SigningKey) -> StaticKeySet:
        return cls({key.kid: key.public_key for key in signing_keys})

    @classmethod
    def from_jwks(cls, document: Any) -> StaticKeySet:
        return cls(parse_jwks(document))

    async def get(self, kid: str) -> Ed25519PublicKey | None:
        return self._keys.get(kid)

    def add(self, kid: str, key: Ed25519PublicKey) -> None:
        self._keys[kid] = key

    def remove(self, kid: str) -> None:
        self._keys.pop(kid, None)

    def keys(self) -> dict[str, Ed25519PublicKey]:
        return dict(self._keys)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return jwks_document(self._keys)


class JwksKeySet:
    """Identity's JWKS fetched over HTTP, cached by `kid`, refreshed with a rate limit.

    - a `kid` not of the form keys are given (`well_formed_kid`) is unknown at once, no fetch;
    - a known `kid` is served from the cache (refreshed in passing once older than `max_age`,
      so a key identity withdrew stops verifying);
    - an unknown `kid` triggers a refresh, unless the last attempt was less than
      `min_refresh_interval` ago — then the answer is "no such key" (→ 401). Identity publishes
      a new key before it signs with it, so a refresh at most that often finds it in time;
    - refreshes are single-flighted: concurrent requests share one fetch and nothing waits on
      a lock, so a flood of made-up `kid`s costs identity at most one fetch per interval;
    - if identity cannot be reached and the key is not cached, `SigningKeysUnavailableError`
      (→ 503) says so instead of a misleading 401.
    """

    def __init__(
        self,
        url: str,
        *,
        client: httpx.AsyncClient | None = None,
        min_refresh_interval: float = 30.0,
        max_age: float = 300.0,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._client = client
        self._owns_client = client is None
        self.min_refresh_interval = min_refresh_interval
        self.max_age = max_age
        self.timeout = timeout
        self._clock = clock
        self._keys: dict[str, Ed25519PublicKey] = {}
        self._fetched_at: float | None = None
        self._last_attempt: float | None = None
        self._last_error: str | None = None
        self._inflight: asyncio.Task[None] | None = None
        #: How many HTTP fetches were made (observable, so tests can prove the rate limit).
        self.fetch_count = 0

    async def get(self, kid: str) -> Ed25519PublicKey | None:
        if not well_formed_kid(kid):
            return None
        key = self._keys.get(kid)
        if key is not None:
            if self._stale():
                await self._refresh(kid, keep_on_failure=True)
                return self._keys.get(kid)
            return key
        await self._refresh(kid, keep_on_failure=False)
        return self._keys.get(kid)

    async def refresh(self) -> None:
        """Fetch now, whatever the rate limit says (start-up, readiness)."""
        await asyncio.shield(self._start_fetch())

    def cached_kids(self) -> list[str]:
        return sorted(self._keys)

    async def aclose(self) -> None:
        if self._inflight is not None:
            self._inflight.cancel()
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    def _stale(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at >= self.max_age

    def _rate_limited(self) -> bool:
        return (
            self._last_attempt is not None
            and self._clock() - self._last_attempt < self.min_refresh_interval
        )

    def _start_fetch(self) -> asyncio.Task[None]:
        """The fetch in flight, or a new one: every caller awaits the same task."""
        if self._inflight is None:
            task = asyncio.get_running_loop().create_task(self._fetch())
            task.add_done_callback(self._fetch_done)
            self._inflight = task
        return self._inflight

    def _fetch_done(self, task: asyncio.Task[None]) -> None:
        if self._inflight is task:
            self._inflight = None
        if not task.cancelled():
            task.exception()  # retrieved here: a failure nobody awaited is not an error

    async def _refresh(self, kid: str, *, keep_on_failure: bool) -> None:
        if self._inflight is None and self._rate_limited():
            if self._last_error is not None and kid not in self._keys and not keep_on_failure:
                raise SigningKeysUnavailableError(
                    "identity's signing keys could not be fetched; retry shortly",
                    headers={"Retry-After": str(max(1, int(self.min_refresh_interval)))},
                )
            return
        try:
            await asyncio.shield(self._start_fetch())
        except SigningKeysUnavailableError:
            if keep_on_failure:
                return
            raise

    async def _fetch(self) -> None:
        self._last_attempt = self._clock()
        self.fetch_count += 1
        try:
            if self._client is None:
                self._client = service_client(self.timeout)
            response = await self._client.get(
                self.url, timeout=self.timeout, headers={"Accept": "application/json"}
            )
            response.raise_for_status()
            if len(response.content) > MAX_JWKS_BYTES:
                raise ValueError("JWKS document too large")
            keys = parse_jwks(response.json())
        except (httpx.HTTPError, ValueError) as exc:
            self._last_error = f"{type(exc).__name__}: {exc}"
            logger.warning(
                "could not fetch the JWKS", extra={"jwks_url": self.url, "error": self._last_error}
            )
            raise SigningKeysUnavailableError(
                "identity's signing keys could not be fetched; retry shortly",
                headers={"Retry-After": str(max(1, int(self.min_refresh_interval)))},
            ) from exc
        self._keys = keys
        self._fetched_at = self._clock()
        self._last_error = None

    @property
    def last_error(self) -> str | None:
        return self._last_error
