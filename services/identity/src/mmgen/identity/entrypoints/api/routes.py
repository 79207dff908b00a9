"""identity's routes: thin — parse, authorise, call the use case, shape the answer."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from mmgen.events.envelope import Actor
from mmgen.events.erased import is_erased
from mmgen.identity.adapters.signing_keys import Rotation
from mmgen.identity.domain.errors import LoginThrottledError, UserNotFoundError
from mmgen.identity.domain.model import User
from mmgen.identity.entrypoints.api.dependencies import (
    Admin,
    AdminCli,
    Person,
    Service,
    StaffReader,
)
from mmgen.identity.entrypoints.api.problems import TooManyAttemptsError
from mmgen.identity.entrypoints.api.schemas import (
    CorrectionRequest,
    CreateAdminRequest,
    CreateUserRequest,
    RefreshRequest,
    Registered,
    RegisterRequest,
    RotationView,
    ServiceTokenRequest,
    ServiceTokenResponse,
    TokenRequest,
    TokenResponse,
    UserView,
)
from mmgen.identity.service_layer.accounts import Correction, Registration
from mmgen.platform.auth import Principal, Purpose
from mmgen.platform.auth.principal import ProcessingPurpose
from mmgen.platform.clients import client_address

PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}


def _actor(principal: Principal) -> Actor:
    return Actor(**principal.actor())


def _view(user: User) -> UserView:
    def plain(value: Any) -> Any:
        return None if is_erased(value) else value

    return UserView(
        user_id=user.id,
        role=str(user.role),
        status=user.status,
        email=plain(user.email),
        name=plain(user.name),
        phone=plain(user.phone),
        business=plain(user.business),
    )


# --- /auth ------------------------------------------------------------------------------------

auth = APIRouter(tags=["auth"])


@auth.post(
    "/auth/register",
    name="register",
    status_code=201,
    responses={409: PROBLEM, 422: PROBLEM},
)
async def register(body: RegisterRequest, identity: Service) -> Registered:
    """Create a client or creator account (other roles are created by an admin)."""
    user_id = await identity.accounts.register(
        Registration(
            email=body.email,
            password=body.password,
            name=body.name,
            role=body.role,
            phone=body.phone,
            business=body.business,
        )
    )
    return Registered(user_id=user_id)


@auth.post("/auth/token", name="issue_token", responses={401: PROBLEM, 429: PROBLEM})
async def issue_token(body: TokenRequest, request: Request, identity: Service) -> TokenResponse:
    """Sign in: an access token (EdDSA JWT, ~15 min) and a rotating refresh token."""
    address = client_address(request)  # X-Forwarded-For only from IDENTITY_TRUSTED_PROXIES
    try:
        user = await identity.accounts.authenticate(body.email, body.password, address)
    except LoginThrottledError as exc:
        raise TooManyAttemptsError(exc.retry_after) from exc
    pair = await identity.tokens.issue_pair(user.id, str(user.role))
    return TokenResponse(
        access_token=pair.access_token, expires_in=pair.expires_in, refresh_token=pair.refresh_token
    )


@auth.post("/auth/refresh", name="refresh_token", responses={401: PROBLEM})
async def refresh_token(body: RefreshRequest, identity: Service) -> TokenResponse:
    """Spend a refresh token for a new pair; presenting a spent one revokes the session."""
    pair = await identity.tokens.refresh(body.refresh_token)
    return TokenResponse(
        access_token=pair.access_token, expires_in=pair.expires_in, refresh_token=pair.refresh_token
    )


@auth.post("/auth/service-token", name="issue_service_token", responses={401: PROBLEM})
async def issue_service_token(body: ServiceTokenRequest, identity: Service) -> ServiceTokenResponse:
    """A short `role: service` token for another service's `/internal/` calls."""
    token = await identity.tokens.service_token(body.service, body.secret)
    return ServiceTokenResponse(access_token=token.access_token, expires_in=token.expires_in)


@auth.get("/.well-known/jwks.json", name="jwks")
async def jwks(identity: Service) -> JSONResponse:
    """The public keys that verify identity's tokens now (a rotated-out key stays until its
    tokens expired)."""
    return JSONResponse(identity.keyring.jwks(), headers={"Cache-Control": "public, max-age=60"})


# --- /users -----------------------------------------------------------------------------------

users = APIRouter(tags=["users"])


@users.get("/users/me", name="get_me", responses={401: PROBLEM, 403: PROBLEM})
async def get_me(principal: Person, identity: Service) -> UserView:
    """The caller's own account."""
    return _view(await identity.accounts.load_active(principal.subject_id))


@users.patch(
    "/users/me",
    name="correct_me",
    responses={401: PROBLEM, 403: PROBLEM, 409: PROBLEM, 422: PROBLEM},
)
async def correct_me(body: CorrectionRequest, principal: Person, identity: Service) -> UserView:
    """Correct one's own details (each changed field is its own event; a new email must be free)."""
    fields = {name: getattr(body, name) for name in body.model_fields_set}
    user = await identity.accounts.correct(
        principal.subject_id, Correction(fields), _actor(principal)
    )
    return _view(user)


@users.delete("/users/me", name="close_me", status_code=204, responses={401: PROBLEM, 403: PROBLEM})
async def close_me(principal: Person, identity: Service) -> Response:
    """Close one's account: its tokens stop working here now, elsewhere once they read the event.
    Erasure follows through retention."""
    await identity.accounts.close(principal.subject_id, _actor(principal))
    return Response(status_code=204)


@users.get(
    "/users/{user_id}",
    name="get_user",
    responses={401: PROBLEM, 403: PROBLEM, 404: PROBLEM},
)
async def get_user(
    user_id: str, principal: StaffReader, purpose: Purpose, identity: Service
) -> UserView:
    """Staff/compliance read of an account, for a declared purpose (`X-Purpose`); audited."""
    canonical = _subject(user_id)
    declared = purpose or ProcessingPurpose.support  # staff always declare one (enforced)
    user = await identity.accounts.read_for_staff(canonical, _actor(principal), str(declared))
    return _view(user)


# --- /admin -----------------------------------------------------------------------------------

admin = APIRouter(tags=["admin"])


@admin.post(
    "/admin/users",
    name="create_user",
    status_code=201,
    responses={401: PROBLEM, 403: PROBLEM, 409: PROBLEM, 422: PROBLEM},
)
async def create_user(body: CreateUserRequest, principal: Admin, identity: Service) -> Registered:
    """An admin creates a staff, compliance or admin account."""
    user_id = await identity.accounts.register(
        Registration(
            email=body.email,
            password=body.password,
            name=body.name,
            role=body.role,
            phone=body.phone,
        ),
        registered_by="admin",
        actor=_actor(principal),
    )
    return Registered(user_id=user_id)


@admin.post(
    "/admin/signing-keys/rotate",
    name="rotate_signing_keys",
    responses={401: PROBLEM, 403: PROBLEM},
)
async def rotate_signing_keys(principal: Admin, identity: Service) -> RotationView:
    """Publish a new signing key now; it signs from `signs_from` (after
    `IDENTITY_SIGNING_KEY_PUBLISH_SECONDS`, so verifiers' JWKS caches know it first); the old
    key verifies until its tokens expired."""
    return _rotation(await identity.tokens.rotate_signing_key(_actor(principal)))


def _rotation(rotation: Rotation) -> RotationView:
    until, signs_from = rotation.previous_verifies_until, rotation.signs_from
    return RotationView(
        kid=rotation.kid,
        previous_kid=rotation.previous_kid,
        previous_verifies_until=until.isoformat() if until else None,
        signs_from=signs_from.isoformat() if signs_from else None,
    )


# --- /internal (service tokens) ------------------------------------------------------------------

internal = APIRouter(tags=["internal"])


@internal.post(
    "/internal/admins",
    name="internal_create_admin",
    status_code=201,
    responses={401: PROBLEM, 403: PROBLEM, 409: PROBLEM, 422: PROBLEM},
)
async def internal_create_admin(
    body: CreateAdminRequest, caller: AdminCli, identity: Service
) -> Registered:
    """`mmgen admin create`: an admin account, for whoever holds the local state's CLI secret."""
    user_id = await identity.accounts.register(
        Registration(email=body.email, password=body.password, name=body.name, role="admin"),
        registered_by="admin",
        actor=_actor(caller),
    )
    return Registered(user_id=user_id)


@internal.post(
    "/internal/signing-keys/rotate",
    name="internal_rotate_signing_keys",
    responses={401: PROBLEM, 403: PROBLEM},
)
async def internal_rotate_signing_keys(caller: AdminCli, identity: Service) -> RotationView:
    """`mmgen admin rotate-keys`."""
    return _rotation(await identity.tokens.rotate_signing_key(_actor(caller)))


def _subject(subject_id: str) -> str:
    """A path id as a canonical UUID; anything else cannot be an account (404)."""
    try:
        return str(UUID(subject_id))
    except ValueError:
        raise UserNotFoundError() from None


ROUTERS = (auth, users, admin, internal)
