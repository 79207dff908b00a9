"""FastAPI dependencies for authentication, roles, service tokens and declared purposes.

Use them as typed aliases in route signatures::

    @router.get("/users/{user_id}")
    async def get_user(user_id: str, principal: StaffOrCompliance, purpose: SupportRead): ...

where `StaffOrCompliance = Annotated[Principal, Depends(require_roles("staff", "compliance"))]`
and `SupportRead = Annotated[ProcessingPurpose | None, Depends(accepts_purposes("support"))]`.
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


def _purposes_text(purposes: Iterable[ProcessingPurpose]) -> str:
    return ", ".join(f"`{p}`" for p in purposes)


def accepts_purposes(
    *purposes: ProcessingPurpose | str,
) -> Callable[..., Awaitable[ProcessingPurpose | None]]:
    """Dependency: the processing purpose declared in `X-Purpose`, one of `purposes`.

    Every route that reads or changes someone's personal data names the purposes that justify
    it (data minimisation, GDPR Art. 5(1)(b)); the header's OpenAPI description and schema
    `enum` list them, so a gateway knows what to send. Staff, compliance and admin must
    declare one (403 `purpose-required`); clients, creators and service tokens may leave it
    out, since their own data or their own projects need no justification. Whoever declares
    one is held to the list: an unknown purpose is 403 `purpose-unknown`, a known one that
    does not justify this route 403 `purpose-not-allowed`, each naming the accepted ones.

    The declared purpose is left on `request.state.purpose` before it is checked, so a
    refusal is audited with what was declared.
    """
    accepted = tuple(dict.fromkeys(ProcessingPurpose(p) for p in purposes))
    if not accepted:
        raise ValueError("accepts_purposes needs at least one purpose")
    listed = _purposes_text(accepted)

    # The header as a default, not `Annotated[...]`: the annotation is a string (PEP 563)
    # resolved in the module's globals, where this route's `listed` is not.
    async def dependency(
        request: Request,
        principal: CurrentPrincipal,
        x_purpose: str | None = Header(
            default=None,
            alias=PURPOSE_HEADER,
            description=(
                "Processing purpose; required of staff, compliance and admin. "
                f"Accepted here: {listed}."
            ),
            json_schema_extra={"enum": [str(p) for p in accepted]},
        ),
    ) -> ProcessingPurpose | None:
        if x_purpose is None or not x_purpose.strip():
            request.state.purpose = None
            if principal.role in PURPOSE_REQUIRED_ROLES:
                raise PurposeRequiredError(accepted)
            return None
        try:
            purpose = ProcessingPurpose(x_purpose.strip())
        except ValueError as exc:
            raise PurposeUnknownError(accepted) from exc
        request.state.purpose = purpose
        if purpose not in accepted:
            raise PurposeNotAllowedError(purpose, accepted)
        return purpose

    dependency.__name__ = "accepts_purposes_" + "_".join(accepted)
    return dependency
