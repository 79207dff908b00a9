"""FastAPI dependencies for authentication, roles, service tokens and declared purposes.

Use them as typed aliases in route signatures::

    @router.get("/users/{user_id}")
    async def get_user(user_id: str, principal: StaffOrCompliance, purpose: Purpose): ...

where `StaffOrCompliance = Annotated[Principal, Depends(require_roles("staff", "compliance"))]`.
Every refusal they raise is a `ProblemError` (401 with `WWW-Authenticate: Bearer`, or 403),
which the app factory renders and hands to the access-denial recorder.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mmgen.platform.auth.errors import (
    PurposeNotAllowedError,
    PurposeRequiredError,
    PurposeUnknownError,
    RoleNotAllowedError,
    SecondFactorRequiredError,
    ServiceTokenRequiredError,
    SubjectRevokedError,
    UnauthenticatedError,
)
from mmgen.platform.auth.principal import (
    PURPOSE_REQUIRED_ROLES,
    Principal,
    ProcessingPurpose,
    Role,
)
from mmgen.platform.auth.verifier import TokenVerifier
from mmgen.platform.errors import ConfigurationError

PURPOSE_HEADER = "X-Purpose"

_bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="JWT",
    description="Access token issued by identity (EdDSA).",
)


def token_verifier_of(request: Request) -> TokenVerifier:
    verifier: TokenVerifier | None = getattr(request.app.state, "token_verifier", None)
    if verifier is None:
        raise ConfigurationError(
            "no token verifier: set jwks_url in the settings or pass token_verifier to create_app"
        )
    return verifier


async def verified_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The verified caller, whatever the factors it signed in with; 401 without a valid token.

    Only routes that let a privileged role *acquire* a second factor use this directly
    (identity's TOTP enrolment); every other route goes through `get_principal`.
    """
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    if credentials is None:
        raise UnauthenticatedError()
    try:
        principal = await token_verifier_of(request).verify(credentials.credentials)
    except SubjectRevokedError as revoked:
        # Refused, but the signature proved who asked: the refusal is audited as theirs.
        request.state.refused_principal = revoked.principal
        raise
    request.state.principal = principal
    return principal


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The verified caller; 401 without a valid bearer token, 403 `mfa-required` for a staff,
    compliance or admin token signed in without a one-time code (NIST SP 800-63B AAL2).

    The refusal names the verified caller, so it is audited as theirs like any 403.
    """
    principal = await verified_principal(request, credentials)
    if principal.needs_second_factor:
        raise SecondFactorRequiredError()
    return principal


SingleFactorPrincipal = Annotated[Principal, Depends(verified_principal)]
"""A verified caller that may lack the second factor (only for enrolling one)."""
CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require_roles(
    *roles: Role | str, single_factor: bool = False
) -> Callable[..., Awaitable[Principal]]:
    """Dependency: the caller, provided their role is one of `roles` (else 403).

    `single_factor=True` lets privileged roles in without "otp" in `amr`: only for the routes
    that enrol the second factor, which touch nobody else's data."""
    allowed = frozenset(Role(role) for role in roles)
    if not allowed:
        raise ValueError("require_roles needs at least one role")
    source = verified_principal if single_factor else get_principal

    # A default, not `Annotated[...]`: the annotation is a string (PEP 563) that FastAPI
    # resolves in the module's globals, where the local `source` is not.
    async def dependency(principal: Principal = Depends(source)) -> Principal:  # noqa: B008
        if principal.role not in allowed:
            raise RoleNotAllowedError(principal.role, allowed)
        return principal

    suffix = "_single_factor" if single_factor else ""
    dependency.__name__ = "require_roles_" + "_".join(sorted(allowed)) + suffix
    return dependency


def require_service(*names: str) -> Callable[..., Awaitable[Principal]]:
    """Dependency for `/internal/` routes: a service token, optionally from named services."""
    allowed = frozenset(names)

    async def dependency(principal: CurrentPrincipal) -> Principal:
        if principal.role is not Role.service:
            raise ServiceTokenRequiredError("this internal operation needs a service token")
        if allowed and principal.subject_id not in allowed:
            raise ServiceTokenRequiredError(
                f"service {principal.subject_id!r} may not call this internal operation"
            )
        return principal

    dependency.__name__ = "require_service"
    return dependency


def _parse_purpose(raw: str, allowed: Iterable[ProcessingPurpose]) -> ProcessingPurpose:
    try:
        return ProcessingPurpose(raw.strip())
    except ValueError as exc:
        raise PurposeUnknownError(allowed) from exc


async def declared_purpose(
    request: Request,
    principal: CurrentPrincipal,
    x_purpose: Annotated[
        str | None,
        Header(
            alias=PURPOSE_HEADER,
            description="Processing purpose; required for staff, compliance and admin reads.",
        ),
    ] = None,
) -> ProcessingPurpose | None:
    """The declared purpose: required for staff/compliance/admin, optional for others.

    An unknown purpose is refused for every role, since whatever is declared ends up in the
    audit log. The result is also left on `request.state.purpose` for the service's events.
    """
    every = list(ProcessingPurpose)
    if x_purpose is None or not x_purpose.strip():
        if principal.role in PURPOSE_REQUIRED_ROLES:
            raise PurposeRequiredError(every)
        request.state.purpose = None
        return None
    purpose = _parse_purpose(x_purpose, every)
    request.state.purpose = purpose
    return purpose


Purpose = Annotated[ProcessingPurpose | None, Depends(declared_purpose)]


def require_purpose(
    *purposes: ProcessingPurpose | str,
) -> Callable[..., Awaitable[ProcessingPurpose]]:
    """Dependency: a declared purpose, for any role, limited to `purposes` (all when empty)."""
    allowed = [ProcessingPurpose(p) for p in purposes] or list(ProcessingPurpose)

    async def dependency(
        request: Request,
        principal: CurrentPrincipal,
        x_purpose: Annotated[str | None, Header(alias=PURPOSE_HEADER)] = None,
    ) -> ProcessingPurpose:
        if x_purpose is None or not x_purpose.strip():
            raise PurposeRequiredError(allowed)
        purpose = _parse_purpose(x_purpose, list(ProcessingPurpose))
        if purpose not in allowed:
            raise PurposeNotAllowedError(purpose, allowed)
        request.state.purpose = purpose
        return purpose

    dependency.__name__ = "require_purpose"
    return dependency
