"""Verification of identity's access tokens: EdDSA only, every claim required, revocable.

Each check that fails raises `InvalidTokenError` with the reason (→ 401, audited as a denial):
an algorithm other than EdDSA (this rejects `alg: none` and the HS256-with-the-public-key
trick before any key is touched), no or unknown `kid`, a bad signature, expiry, a wrong
audience or issuer, a missing claim, an unknown role, or a subject on the denylist.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jwt

from mmgen.platform.auth.denylist import SubjectDenylist
from mmgen.platform.auth.errors import InvalidTokenError
from mmgen.platform.auth.keys import ALGORITHM, JwksKeySet, KeySet
from mmgen.platform.auth.principal import Principal, Role
from mmgen.platform.settings import ServiceSettings

REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub", "role")
#: Tokens longer than this are refused before parsing (ours are a few hundred bytes).
MAX_TOKEN_LENGTH = 8192


class TokenVerifier:
    """Turns a bearer token into a `Principal`, or refuses it."""

    def __init__(
        self,
        keys: KeySet,
        *,
        issuer: str = "mmgen-identity",
        audience: str = "mmgen",
        leeway: int = 5,
        denylist: SubjectDenylist | None = None,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.denylist = denylist

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
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidTokenError("no key id")
        key = await self.keys.get(kid)
        if key is None:
            raise InvalidTokenError("unknown key id")
        claims = self._decode(token, key)
        subject, role = claims.get("sub"), claims.get("role")
        if not isinstance(subject, str) or not subject:
            raise InvalidTokenError("invalid subject")
        try:
            if not isinstance(role, str):
                raise ValueError("role is not a string")
            parsed_role = Role(role)
        except ValueError as exc:
            raise InvalidTokenError("unknown role") from exc
        if self.denylist is not None and await self.denylist.is_denied(subject):
            raise InvalidTokenError("subject revoked")
        return Principal(subject_id=subject, role=parsed_role, claims=claims)

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
