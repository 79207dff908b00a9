"""Authentication and authorization for services: JWT verification, roles, purposes."""

from mmgen.platform.auth.denylist import InMemorySubjectDenylist, SubjectDenylist
from mmgen.platform.auth.dependencies import (
    PURPOSE_HEADER,
    CurrentPrincipal,
    Purpose,
    declared_purpose,
    get_principal,
    require_purpose,
    require_roles,
    require_service,
)
from mmgen.platform.auth.errors import (
    AuthError,
    InvalidTokenError,
    PurposeNotAllowedError,
    PurposeRequiredError,
    PurposeUnknownError,
    RoleNotAllowedError,
    ServiceTokenRequiredError,
    SigningKeysUnavailableError,
    UnauthenticatedError,
)
from mmgen.platform.auth.keys import (
    JwksKeySet,
    KeySet,
    SigningKey,
    StaticKeySet,
    issue_token,
    jwks_document,
    parse_jwks,
    public_jwk,
)
from mmgen.platform.auth.principal import (
    HUMAN_ROLES,
    PURPOSE_REQUIRED_ROLES,
    Principal,
    ProcessingPurpose,
    Role,
)
from mmgen.platform.auth.verifier import REQUIRED_CLAIMS, TokenVerifier

__all__ = [
    "HUMAN_ROLES",
    "PURPOSE_HEADER",
    "PURPOSE_REQUIRED_ROLES",
    "REQUIRED_CLAIMS",
    "AuthError",
    "CurrentPrincipal",
    "InMemorySubjectDenylist",
    "InvalidTokenError",
    "JwksKeySet",
    "KeySet",
    "Principal",
    "ProcessingPurpose",
    "Purpose",
    "PurposeNotAllowedError",
    "PurposeRequiredError",
    "PurposeUnknownError",
    "Role",
    "RoleNotAllowedError",
    "ServiceTokenRequiredError",
    "SigningKey",
    "SigningKeysUnavailableError",
    "StaticKeySet",
    "SubjectDenylist",
    "TokenVerifier",
    "UnauthenticatedError",
    "declared_purpose",
    "get_principal",
    "issue_token",
    "jwks_document",
    "parse_jwks",
    "public_jwk",
    "require_purpose",
    "require_roles",
    "require_service",
]
