"""Verification of identity's access tokens (RFC 8725): EdDSA only, every claim required,
bounded lifetime, revocable.

Each check that fails raises `InvalidTokenError` with the reason (→ a generic 401; the reason
goes to the audit only): an algorithm other than EdDSA (this rejects `alg: none` and the
HS256-with-the-public-key trick before any key is touched), a header `typ` other than `at+jwt`
(an ID token or another JWT replayed as an access token), a missing, malformed or unknown
`kid`, a bad signature, expiry, an audience that is not this service's, a wrong issuer, a
missing claim (`jti` included), a lifetime (`exp - iat`) over the maximum, an unknown role, a
subject on the denylist, or a token issued (`iat`) before its subject's credentials last changed
(the denylist's `not_before`: a password change or reset ends every earlier token at once).

Each service verifies its own audience (`ServiceSettings.jwt_audience`, its name by default);
a token's `aud` is the list of services it was issued for (`mmgen.platform.auth.audiences`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jwt

from mmgen.platform.auth.denylist import SubjectDenylist
from mmgen.platform.auth.errors import InvalidTokenError, SubjectRevokedError
from mmgen.platform.auth.keys import (
    ACCESS_TOKEN_TYPE,
    ALGORITHM,
    JwksKeySet,
    KeySet,
    well_formed_kid,
)
from mmgen.platform.auth.principal import Principal, Role
from mmgen.platform.settings import ServiceSettings

REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub", "role", "jti")
#: Tokens longer than this are refused before parsing (ours are a few hundred bytes).
MAX_TOKEN_LENGTH = 8192
#: Header `typ` values of an access token (RFC 9068 §2.1; compared case-insensitively).
ACCESS_TOKEN_TYPES = frozenset({ACCESS_TOKEN_TYPE, f"application/{ACCESS_TOKEN_TYPE}"})
#: The default longest lifetime (`exp - iat`) a verifier accepts, in seconds.
DEFAULT_MAX_LIFETIME = 3600
MAX_JTI_LENGTH = 200


class TokenVerifier:
    """Turns a bearer token into a `Principal`, or refuses it."""

    def __init__(
        self,
        keys: KeySet,
        *,
        audience: str,
        issuer: str = "mmgen-identity",
        leeway: int = 5,
        denylist: SubjectDenylist | None = None,
        max_lifetime: int = DEFAULT_MAX_LIFETIME,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.denylist = denylist
        self.max_lifetime = max_lifetime

    @classmethod
    def from_settings(
        cls,
        settings: ServiceSettings,
        *,
        keys: KeySet | None = None,
        denylist: SubjectDenylist | None = None,
    ) -> TokenVerifier:
        """A verifier on `keys`, or on a `JwksKeySet` of `settings.jwks_url`."""
        if keys is None:
            if not settings.jwks_url:
                raise ValueError("jwks_url is not set and no key set was given")
            keys = JwksKeySet(
                settings.jwks_url,
                min_refresh_interval=settings.jwks_min_refresh_interval_seconds,
                max_age=settings.jwks_max_age_seconds,
            )
        return cls(
            keys,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            leeway=settings.jwt_leeway_seconds,
            denylist=denylist,
            max_lifetime=settings.jwt_max_lifetime_seconds,
        )

    async def verify(self, token: str) -> Principal:
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise InvalidTokenError("malformed token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidTokenError("malformed token") from exc
        if header.get("alg") != ALGORITHM:
            raise InvalidTokenError("algorithm not allowed")
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
            raise InvalidTokenError("not an access token (typ)")
        kid = header.get("kid")
        if kid is None or kid == "":
            raise InvalidTokenError("no key id")
        if not well_formed_kid(kid):
            raise InvalidTokenError("malformed key id")
        key = await self.keys.get(kid)
        if key is None:
            raise InvalidTokenError("unknown key id")
        claims = self._decode(token, key)
        jti = claims.get("jti")
        if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_LENGTH:
            raise InvalidTokenError("invalid token id")
        if _seconds(claims["exp"]) - _seconds(claims["iat"]) > self.max_lifetime:
            raise InvalidTokenError("lifetime over the maximum")
        subject, role = claims.get("sub"), claims.get("role")
        if not isinstance(subject, str) or not subject:
            raise InvalidTokenError("invalid subject")
        try:
            if not isinstance(role, str):
                raise ValueError("role is not a string")
            parsed_role = Role(role)
        except ValueError as exc:
            raise InvalidTokenError("unknown role") from exc
        principal = Principal(subject_id=subject, role=parsed_role, claims=claims)
        if self.denylist is not None:
            if await self.denylist.is_denied(subject):
                raise SubjectRevokedError(principal)
            not_before = await self.denylist.not_before(subject)
            if not_before is not None and _seconds(claims["iat"]) < not_before:
                raise SubjectRevokedError(principal, "issued before the credentials changed")
        return principal

    def _decode(self, token: str, key: Any) -> Mapping[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidTokenError("expired") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidTokenError(f"missing claim {exc.claim!r}") from exc
        except jwt.InvalidAudienceError as exc:
            raise InvalidTokenError("wrong audience") from exc
        except jwt.InvalidIssuerError as exc:
            raise InvalidTokenError("wrong issuer") from exc
        except jwt.ImmatureSignatureError as exc:
            raise InvalidTokenError("not yet valid") from exc
        except jwt.InvalidSignatureError as exc:
            raise InvalidTokenError("bad signature") from exc
        except jwt.PyJWTError as exc:
            raise InvalidTokenError("invalid token") from exc
        return claims

    async def aclose(self) -> None:
        closer = getattr(self.keys, "aclose", None)
        if closer is not None:
            await closer()


def _seconds(value: Any) -> float:
    """A NumericDate PyJWT has validated already (it accepts what `int()` accepts)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return float(int(value))
