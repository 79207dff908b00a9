"""identity's routes: thin — parse, authorise, call the use case, shape the answer."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from mmgen.events.envelope import Actor
from mmgen.events.erased import is_erased
from mmgen.identity.adapters.signing_keys import Rotation
from mmgen.identity.domain.emails import normalise_email
from mmgen.identity.domain.errors import LoginThrottledError, UserNotFoundError
from mmgen.identity.domain.model import User
from mmgen.identity.entrypoints.api.dependencies import (
    AccountReadPurpose,
    Admin,
    AdminCli,
    Enrolling,
    Person,
    Service,
    StaffReader,
)
from mmgen.identity.entrypoints.api.problems import TooManyAttemptsError
from mmgen.identity.entrypoints.api.schemas import (
    Accepted,
    CloseRequest,
    CorrectionRequest,
    CreateAdminRequest,
    CreateUserRequest,
    PasswordChangeRequest,
    PasswordResetConfirmRequest,
    PasswordResetRequest,
    RefreshRequest,
    Registered,
    RegisterRequest,
    RotationView,
    ServiceTokenRequest,
    ServiceTokenResponse,
    TokenRequest,
    TokenResponse,
    TotpConfirmRequest,
    TotpEnrolment,
    TotpEnrolRequest,
    UserView,
    VerifyEmailRequest,
)
from mmgen.identity.service_layer.accounts import Correction, Registration
from mmgen.identity.service_layer.credentials import SecondFactor
from mmgen.platform.auth import Principal
from mmgen.platform.auth.principal import ProcessingPurpose
from mmgen.platform.clients import client_address

PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}


def _actor(principal: Principal) -> Actor:
    return Actor(**principal.actor())


def _audiences(principal: Principal) -> list[str] | None:
    """The audiences of the caller's token, for a pair that replaces it (None: the default)."""
    aud = principal.claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list | tuple) and all(isinstance(name, str) for name in aud):
        return list(aud)
    return None


def _view(user: User) -> UserView:
    def plain(value: Any) -> Any:
        return None if is_erased(value) else value

    return UserView(
        user_id=user.id,
        role=str(user.role),
        status=user.status,
        email_verified=user.email_verified,
        mfa_enabled=user.totp_enabled,
        email=plain(user.email),
        name=plain(user.name),
        phone=plain(user.phone),
        business=plain(user.business),
    )


# --- /auth ------------------------------------------------------------------------------------

auth = APIRouter(tags=["auth"])


REGISTRATION_ACCEPTED = (
    "if the address can be registered, the account was created; a message was sent to the "
    "address either way (verify it with POST /auth/verify-email)"
)
RESET_ACCEPTED = "if an account has this address, a one-time reset token was mailed to it"


@auth.post(
    "/auth/register",
    name="register",
    status_code=202,
    responses={422: PROBLEM, 429: PROBLEM},
)
async def register(body: RegisterRequest, request: Request, identity: Service) -> Accepted:
    """Create a client or creator account (other roles are created by an admin).

    The answer is the same for a free and a taken address (the owner of a taken one is told by
    mail), so it tells nobody which addresses have accounts; sign in to learn your user id."""
    registration = Registration(
        email=body.email,
        password=body.password,
        name=body.name,
        role=body.role,
        phone=body.phone,
        business=body.business,
    )
    try:
        await identity.credentials.register(registration, client_address(request))
    except LoginThrottledError as exc:
        raise TooManyAttemptsError(exc.retry_after) from exc
    return Accepted(detail=REGISTRATION_ACCEPTED)


@auth.post("/auth/token", name="issue_token", responses={400: PROBLEM, 401: PROBLEM, 429: PROBLEM})
async def issue_token(body: TokenRequest, request: Request, identity: Service) -> TokenResponse:
    """Sign in: an access token (EdDSA JWT, ~15 min) and a rotating refresh token. An account
    with TOTP needs `totp` (or `recovery_code`): without one → 401 with `code: mfa_required`.
    The token's `amr` says which factors were shown; its `aud` lists the services it works at:
    `audience` if given (one the role may not use → 400 `audience-not-allowed`, nothing
    issued), else every service the role may use. Refreshing keeps the audiences."""
    address = client_address(request)  # X-Forwarded-For only from IDENTITY_TRUSTED_PROXIES
    factor = SecondFactor(totp=body.totp, recovery_code=body.recovery_code)
    try:
        user, amr = await identity.credentials.sign_in(body.email, body.password, factor, address)
    except LoginThrottledError as exc:
        raise TooManyAttemptsError(exc.retry_after) from exc
    pair = await identity.tokens.issue_pair(user.id, str(user.role), amr, body.audience)
    return TokenResponse(
        access_token=pair.access_token, expires_in=pair.expires_in, refresh_token=pair.refresh_token
    )


@auth.post("/auth/verify-email", name="verify_email", status_code=204, responses={400: PROBLEM})
async def verify_email(body: VerifyEmailRequest, identity: Service) -> Response:
    """Prove the mailbox with the token mailed at registration (or after an email change)."""
    await identity.credentials.verify_email(body.token)
    return Response(status_code=204)


@auth.post("/auth/password-reset", name="request_password_reset", status_code=202)
async def request_password_reset(
    body: PasswordResetRequest, request: Request, identity: Service
) -> Accepted:
    """Mail a one-time reset token to the account of this address, if there is one; the answer
    is the same either way (and when the request was throttled)."""
    await identity.credentials.request_password_reset(body.email, client_address(request))
    return Accepted(detail=RESET_ACCEPTED)


@auth.post(
    "/auth/password-reset/confirm",
    name="confirm_password_reset",
    status_code=204,
    responses={400: PROBLEM, 422: PROBLEM},
)
async def confirm_password_reset(body: PasswordResetConfirmRequest, identity: Service) -> Response:
    """Set a new password with the mailed token (once, before it expires); every session of
    the account is revoked, and every access token issued before it is refused."""
    await identity.credentials.confirm_password_reset(body.token, body.new_password)
    return Response(status_code=204)


@auth.post("/auth/refresh", name="refresh_token", responses={401: PROBLEM})
async def refresh_token(body: RefreshRequest, identity: Service) -> TokenResponse:
    """Spend a refresh token for a new pair; presenting a spent one revokes the session."""
    pair = await identity.tokens.refresh(body.refresh_token)
    return TokenResponse(
        access_token=pair.access_token, expires_in=pair.expires_in, refresh_token=pair.refresh_token
    )


@auth.post(
    "/auth/service-token", name="issue_service_token", responses={400: PROBLEM, 401: PROBLEM}
)
async def issue_service_token(body: ServiceTokenRequest, identity: Service) -> ServiceTokenResponse:
    """A short `role: service` token for another service's `/internal/` calls, for the services
    in `audience` (default: every one a service token may reach)."""
    token = await identity.tokens.service_token(body.service, body.secret, body.audience)
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
async def correct_me(
    body: CorrectionRequest, request: Request, principal: Person, identity: Service
) -> UserView:
    """Correct one's own details (each changed field is its own event; a new email must be free).
    A new email needs `current_password` (and a one-time code when TOTP is on) and is to be
    verified again."""
    fields = body.corrections()
    if "email" in fields:
        normalise_email(str(fields["email"]))  # an invalid address is a 422 before anything
        await _reauthenticate(identity, principal, request, body.current_password, body)
    user = await identity.accounts.correct(
        principal.subject_id, Correction(fields), _actor(principal)
    )
    return _view(user)


@users.delete("/users/me", name="close_me", status_code=204, responses={401: PROBLEM, 403: PROBLEM})
async def close_me(
    body: CloseRequest, request: Request, principal: Person, identity: Service
) -> Response:
    """Close one's account, confirmed with the current password (and a one-time code when TOTP
    is on): its tokens stop working here now, elsewhere once they read the event. Erasure
    follows through retention."""
    await _reauthenticate(identity, principal, request, body.current_password, body)
    await identity.accounts.close(principal.subject_id, _actor(principal))
    return Response(status_code=204)


async def _reauthenticate(
    identity: Any, principal: Principal, request: Request, password: str | None, body: Any
) -> None:
    factor = SecondFactor(totp=body.totp, recovery_code=body.recovery_code)
    try:
        await identity.credentials.reauthenticate(
            principal.subject_id, password or "", factor, client_address(request)
        )
    except LoginThrottledError as exc:
        raise TooManyAttemptsError(exc.retry_after) from exc


@users.post(
    "/users/me/password",
    name="change_password",
    responses={401: PROBLEM, 403: PROBLEM, 422: PROBLEM, 429: PROBLEM},
)
async def change_password(
    body: PasswordChangeRequest, request: Request, principal: Person, identity: Service
) -> TokenResponse:
    """A new password, given the current one. Every session of the account is signed out: its
    refresh tokens are revoked, and every access token issued before the change is refused by
    every service as soon as it reads identity's `PasswordChanged` (here at once). The answer is
    a fresh pair for the caller, for the same audiences as the token that asked."""
    try:
        await identity.credentials.change_password(
            principal.subject_id,
            body.current_password,
            body.new_password,
            client_address(request),
            _actor(principal),
        )
    except LoginThrottledError as exc:
        raise TooManyAttemptsError(exc.retry_after) from exc
    pair = await identity.tokens.issue_pair(
        principal.subject_id,
        str(principal.role),
        principal.amr or ("pwd",),
        _audiences(principal),
    )
    return TokenResponse(
        access_token=pair.access_token, expires_in=pair.expires_in, refresh_token=pair.refresh_token
    )


@users.post(
    "/users/me/mfa/totp",
    name="enrol_totp",
    status_code=201,
    responses={401: PROBLEM, 403: PROBLEM, 409: PROBLEM, 429: PROBLEM},
)
async def enrol_totp(
    body: TotpEnrolRequest, request: Request, principal: Enrolling, identity: Service
) -> TotpEnrolment:
    """A new TOTP secret and 10 recovery codes, shown once; active after
    `POST /users/me/mfa/totp/confirm`. Open to staff, compliance and admin tokens without a
    second factor (this is where they get one)."""
    factor = SecondFactor(totp=body.totp, recovery_code=body.recovery_code)
    try:
        enrolment = await identity.credentials.enrol_totp(
            principal.subject_id, body.current_password, factor, client_address(request)
        )
    except LoginThrottledError as exc:
        raise TooManyAttemptsError(exc.retry_after) from exc
    return TotpEnrolment(
        secret=enrolment.secret,
        otpauth_uri=enrolment.otpauth_uri,
        recovery_codes=enrolment.recovery_codes,
    )


@users.post(
    "/users/me/mfa/totp/confirm",
    name="confirm_totp",
    status_code=204,
    responses={401: PROBLEM, 403: PROBLEM, 409: PROBLEM},
)
async def confirm_totp(
    body: TotpConfirmRequest, principal: Enrolling, identity: Service
) -> Response:
    """Activate the enrolled secret with a current code; sign-in needs a code from now on."""
    await identity.credentials.confirm_totp(principal.subject_id, body.code)
    return Response(status_code=204)


@users.get(
    "/users/{user_id}",
    name="get_user",
    responses={401: PROBLEM, 403: PROBLEM, 404: PROBLEM},
)
async def get_user(
    user_id: str, principal: StaffReader, purpose: AccountReadPurpose, identity: Service
) -> UserView:
    """Staff/compliance read of an account, for a declared purpose (`X-Purpose`: support,
    security, legal_compliance or payment_processing); audited."""
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
