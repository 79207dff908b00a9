"""The console's HTTP edge: pages, static ES modules, the sign-in, and the officer's API.

The browser talks to the console only (one origin, a strict Content-Security-Policy); the
console calls the audit log (consent) and retention with the officer's token, which stays in
the server-side session. `/api/*` answers JSON or problem+json; every write needs the
session's CSRF token in `X-CSRF-Token` (and the `SameSite=Strict` cookie besides).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import (
    FileResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from pymongo import AsyncMongoClient
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from mmgen.console.mongo_sessions import MongoSessionStore
from mmgen.console.sessions import Session, SessionStore, SessionTableFullError
from mmgen.console.settings import ConsoleSettings
from mmgen.console.signin import SignInRefusedError, refresh, sign_in
from mmgen.console.upstream import Answer, Upstream, UpstreamUnavailableError
from mmgen.events.mongo_keystore import MongoKeystore
from mmgen.platform import PlatformApp, ProblemError
from mmgen.platform import create_app as platform_app
from mmgen.platform.auth.verifier import TokenVerifier
from mmgen.platform.health import mongo_check
from mmgen.platform.http import service_client
from mmgen.platform.problems import problem_response

VERSION = "0.1.0"
STATIC = Path(__file__).parent / "static"
PAGES = ("/signin", "/audit", "/tail", "/requests", "/holds", "/policies")
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
#: A token this close to its expiry is refreshed before the request uses it.
REFRESH_AHEAD_S = 60.0
logger = logging.getLogger("mmgen.console")


class NotSignedInError(ProblemError):
    status = 401
    slug = "console-not-signed-in"
    title = "Not signed in"


class CsrfError(ProblemError):
    status = 403
    slug = "console-csrf"
    title = "Missing or wrong CSRF token"


class UnavailableError(ProblemError):
    status = 503
    slug = "console-upstream-unavailable"
    title = "A service did not answer"


class SignInBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=1024)
    totp: str | None = Field(default=None, pattern=r"^[0-9]{6,8}$")


class SecurityHeaders(BaseHTTPMiddleware):
    """CSP and friends on every answer; `no-store` on everything but the static modules."""

    def __init__(self, app: Any, *, secure: bool) -> None:
        super().__init__(app)
        self.secure = secure

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        if self.secure:
            response.headers["Strict-Transport-Security"] = "max-age=31536000"
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response


def cookie_name(settings: ConsoleSettings) -> str:
    # `__Host-` binds the cookie to this origin, but browsers accept it only when Secure.
    return "__Host-console" if settings.secure_cookie else "console_session"


def _state(request: Request) -> Any:
    return request.app.state


async def current_session(request: Request) -> Session:
    """The request's session; a token that expires within `REFRESH_AHEAD_S` is refreshed at
    identity first (and must still be a compliance token with a second factor) by the one
    request, on any replica, that claims it; the others use the current token meanwhile."""
    state = _state(request)
    session = await state.sessions.get(request.cookies.get(cookie_name(state.settings)))
    if session is None:
        logger.info("console request without a session", extra={"route": request.url.path})
        raise NotSignedInError("sign in to use the console")
    if (
        session.refresh_token
        and session.expires_at - time.time() < REFRESH_AHEAD_S
        and await state.sessions.claim_refresh(session)
    ):
        try:
            renewed = await refresh(
                state.http, state.settings.identity_url, state.token_verifier,
                session.refresh_token,
            )  # fmt: skip
        except SignInRefusedError as exc:
            await state.sessions.close(session.id)
            raise NotSignedInError(f"your session ended: {exc.detail}") from exc
        await state.sessions.renew(
            session, renewed.access_token, renewed.expires_at, renewed.refresh_token
        )
    return session


Signed = Annotated[Session, Depends(current_session)]


def csrf_checked(
    request: Request,
    session: Signed,
    token: Annotated[str | None, Header(alias="X-CSRF-Token")] = None,
) -> Session:
    if not session.csrf_matches(token):
        logger.warning("console write without its CSRF token", extra={"route": request.url.path})
        raise CsrfError("reload the page and try again")
    return session


Writer = Annotated[Session, Depends(csrf_checked)]


async def _relay(request: Request, session: Session, answer: Answer) -> Response:
    """The service's answer as is; a 401 there (token revoked or expired) ends the session."""
    if answer.status == 401:
        await _state(request).sessions.close(session.id)
    return Response(answer.body, status_code=answer.status, media_type=answer.content_type)


def _params(request: Request, allowed: tuple[str, ...]) -> dict[str, str]:
    return {k: v for k, v in request.query_params.items() if k in allowed and v != ""}


async def _call(
    request: Request,
    session: Session,
    service: str,
    method: str,
    path: str,
    *,
    params: dict[str, str] | None = None,
    json: Any = None,
) -> Response:
    upstream: Upstream = getattr(_state(request), service)
    try:
        answer = await upstream.call(method, path, session.access_token, params=params, json=json)
    except UpstreamUnavailableError as exc:
        raise UnavailableError(f"{exc.service} did not answer: try again") from exc
    return await _relay(request, session, answer)


def build_router() -> APIRouter:
    router = APIRouter()
    api = APIRouter(prefix="/api")

    @router.get("/", name="console_home", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/audit", status_code=303)

    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    for prefix in PAGES:
        router.add_api_route(
            prefix,
            page,
            methods=["GET"],
            name=f"page{prefix.replace('/', '_')}",
            include_in_schema=False,
        )
    router.add_api_route(
        "/audit/{seq}", page, methods=["GET"], name="page_entry", include_in_schema=False
    )
    router.add_api_route(
        "/requests/{request_id}",
        page,
        methods=["GET"],
        name="page_request",
        include_in_schema=False,
    )
    router.add_api_route(
        "/subjects/{subject_id}",
        page,
        methods=["GET"],
        name="page_subject",
        include_in_schema=False,
    )

    # --- session ---------------------------------------------------------------------------

    @api.post("/session", name="console_sign_in")
    async def create_session(request: Request, body: SignInBody) -> Response:
        state = _state(request)
        origin = request.headers.get("origin")
        if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
            raise CsrfError("sign in from the console's own page")
        try:
            signed = await sign_in(
                state.http,
                state.settings.identity_url,
                state.token_verifier,
                email=body.email,
                password=body.password,
                totp=body.totp,
            )
            session = await state.sessions.open(
                signed.access_token,
                signed.principal.subject_id,
                str(signed.principal.role),
                signed.expires_at,
                signed.refresh_token,
            )
        except SignInRefusedError as exc:
            logger.warning("sign-in refused", extra={"code": exc.code, "status": exc.status})
            return problem_response(
                request,
                status=exc.status,
                slug=f"console-{exc.code.replace('_', '-')}",
                title="Sign-in refused",
                detail=exc.detail,
                extensions={"code": exc.code},
            )
        except SessionTableFullError:
            return problem_response(request, status=503, detail="too many open sessions")
        response = JSONResponse(_session_json(session), status_code=201)
        # No Max-Age: the session's end is the server's to decide (idleness, the token's
        # expiry, sign-out); a cookie dropped after `idle` seconds would sign out an officer
        # who never stopped working.
        response.set_cookie(
            cookie_name(state.settings),
            session.id,
            path="/",
            secure=state.settings.secure_cookie,
            httponly=True,
            samesite="strict",
        )
        return response

    @api.get("/session", name="console_session")
    async def read_session(session: Signed) -> dict[str, Any]:
        return _session_json(session)

    @api.delete("/session", name="console_sign_out", status_code=204)
    async def delete_session(request: Request, session: Writer) -> Response:
        await _state(request).sessions.close(session.id)
        response = Response(status_code=204)
        response.delete_cookie(cookie_name(_state(request).settings), path="/")
        return response

    @api.get("/config", name="console_config")
    async def config(request: Request, session: Signed) -> dict[str, Any]:
        """The pinned keys the browser verifies the log with (from settings, not the log)."""
        settings: ConsoleSettings = _state(request).settings
        return {
            "audit_log_key": settings.audit_log_key,
            "witness_keys": list(settings.witness_keys),
            "witness_quorum": settings.witness_quorum,
        }

    # --- the audit log -----------------------------------------------------------------------

    @api.get("/audit/entries", name="console_audit_entries")
    async def entries(request: Request, session: Signed) -> Response:
        allowed = (
            "subject_id",
            "actor_id",
            "action",
            "event_type",
            "producer",
            "since",
            "until",
            "limit",
            "cursor",
        )
        return await _call(
            request, session, "audit", "GET", "/audit/entries", params=_params(request, allowed)
        )

    @api.get("/audit/entries/{seq}", name="console_audit_entry")
    async def entry(
        request: Request, session: Signed, seq: Annotated[int, PathParam(ge=0)]
    ) -> Response:
        return await _call(request, session, "audit", "GET", f"/audit/entries/{seq}")

    @api.get("/audit/proofs/inclusion", name="console_audit_inclusion")
    async def inclusion(
        request: Request,
        session: Signed,
        seq: Annotated[int, Query(ge=0)],
        tree_size: Annotated[int, Query(ge=1)],
    ) -> Response:
        params = {"seq": str(seq), "tree_size": str(tree_size)}
        return await _call(
            request, session, "audit", "GET", "/audit/proofs/inclusion", params=params
        )

    @api.get("/audit/checkpoints/latest", name="console_audit_latest_head")
    async def latest_head(request: Request, session: Signed) -> Response:
        return await _call(request, session, "audit", "GET", "/audit/checkpoints/latest")

    @api.get("/audit/checkpoints/{tree_size}", name="console_audit_head")
    async def head(
        request: Request, session: Signed, tree_size: Annotated[int, PathParam(ge=1)]
    ) -> Response:
        return await _call(request, session, "audit", "GET", f"/audit/checkpoints/{tree_size}")

    @api.get("/audit/subjects/{subject_id}/report", name="console_subject_report")
    async def report(
        request: Request,
        session: Signed,
        subject_id: Annotated[str, PathParam(min_length=1, max_length=256)],
    ) -> Response:
        return await _call(request, session, "audit", "GET", f"/audit/subjects/{subject_id}/report")

    @api.get("/audit/stream", name="console_audit_stream")
    async def stream(
        request: Request,
        session: Signed,
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=32)] = None,
    ) -> StreamingResponse:
        """The live tail: consent's stream relayed as it comes; the browser's EventSource
        resumes after a disconnect with `Last-Event-ID`, which is passed on."""
        upstream: Upstream = _state(request).audit
        params = _params(request, ("from",))
        return StreamingResponse(
            upstream.stream(
                "/audit/stream", session.access_token, last_event_id=last_event_id, params=params
            ),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    # --- retention ---------------------------------------------------------------------------

    @api.get("/privacy-requests", name="console_requests")
    async def requests(request: Request, session: Signed) -> Response:
        allowed = ("status", "overdue", "type", "limit", "cursor")
        return await _call(
            request,
            session,
            "retention",
            "GET",
            "/privacy-requests",
            params=_params(request, allowed),
        )

    @api.get("/privacy-requests/{request_id}", name="console_request")
    async def one_request(
        request: Request, session: Signed, request_id: Annotated[str, PathParam(max_length=64)]
    ) -> Response:
        return await _call(request, session, "retention", "GET", f"/privacy-requests/{request_id}")

    @api.get("/privacy-requests/{request_id}/receipt", name="console_receipt")
    async def receipt(
        request: Request, session: Signed, request_id: Annotated[str, PathParam(max_length=64)]
    ) -> Response:
        """The signed erasure receipt as retention gives it (`application/jose`)."""
        return await _call(
            request, session, "retention", "GET", f"/privacy-requests/{request_id}/receipt"
        )

    @api.get("/receipt-keys", name="console_receipt_keys")
    async def receipt_keys(request: Request, session: Signed) -> Response:
        """Retention's receipt keys (its public JWKS)."""
        return await _call(request, session, "retention", "GET", "/.well-known/jwks.json")

    @api.post("/privacy-requests/{request_id}/extension", name="console_extend")
    async def extend(
        request: Request, session: Writer, request_id: Annotated[str, PathParam(max_length=64)]
    ) -> Response:
        return await _call(
            request,
            session,
            "retention",
            "POST",
            f"/privacy-requests/{request_id}/extension",
            json=await _json_body(request),
        )

    @api.get("/retention/holds", name="console_holds")
    async def holds(request: Request, session: Signed) -> Response:
        return await _call(
            request,
            session,
            "retention",
            "GET",
            "/retention/holds",
            params=_params(request, ("subject_id", "limit", "cursor", "active")),
        )

    @api.post("/retention/holds", name="console_place_hold")
    async def place_hold(request: Request, session: Writer) -> Response:
        return await _call(
            request,
            session,
            "retention",
            "POST",
            "/retention/holds",
            json=await _json_body(request),
        )

    @api.delete("/retention/holds/{hold_id}", name="console_release_hold")
    async def release_hold(
        request: Request, session: Writer, hold_id: Annotated[str, PathParam(max_length=64)]
    ) -> Response:
        return await _call(request, session, "retention", "DELETE", f"/retention/holds/{hold_id}")

    @api.get("/retention/policies", name="console_policies")
    async def policies(request: Request, session: Signed) -> Response:
        return await _call(
            request,
            session,
            "retention",
            "GET",
            "/retention/policies",
            params=_params(request, ("limit", "cursor")),
        )

    @api.post("/retention/policies", name="console_define_policy")
    async def define_policy(request: Request, session: Writer) -> Response:
        return await _call(
            request,
            session,
            "retention",
            "POST",
            "/retention/policies",
            json=await _json_body(request),
        )

    router.include_router(api)
    return router


class BodyNotJsonError(ProblemError):
    status = 400
    slug = "malformed-json"
    title = "The body is not JSON"


async def _json_body(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError as exc:
        raise BodyNotJsonError("send a JSON object") from exc


def _session_json(session: Session) -> dict[str, Any]:
    return {
        "subject_id": session.subject_id,
        "role": session.role,
        "expires_at": session.expires_at,
        "csrf_token": session.csrf_token,
    }


def build_app(
    settings: ConsoleSettings,
    *,
    token_verifier: TokenVerifier | None = None,
    client: httpx.AsyncClient | None = None,
) -> PlatformApp:
    """The console app; `token_verifier` defaults to identity's JWKS (`CONSOLE_JWKS_URL`).

    Sessions live in the console's own database (`CONSOLE_MONGO_URI`, `CONSOLE_MONGO_DATABASE`),
    so every replica shares them and a restart keeps them."""
    mongo: AsyncMongoClient[Any] = AsyncMongoClient(settings.mongo_uri, tz_aware=True)
    db = mongo[settings.mongo_database]
    keystore = MongoKeystore(
        db, settings.master_keyring(), cache_ttl_seconds=settings.key_cache_ttl_seconds
    )
    sessions = MongoSessionStore(
        db,
        keystore,
        idle_seconds=settings.session_idle_seconds,
        max_sessions=settings.max_sessions,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await keystore.ensure_indexes()
        await sessions.ensure_indexes()
        http = client or service_client(settings.upstream_timeout_seconds)
        app.state.http = http
        assert settings.audit_url and settings.retention_url
        app.state.audit = Upstream("the audit log", settings.audit_url, http)
        app.state.retention = Upstream("retention", settings.retention_url, http)
        try:
            yield
        finally:
            if client is None:
                await http.aclose()
            await mongo.close()

    app = platform_app(
        settings,
        title="mmgen compliance console",
        version=VERSION,
        routers=[build_router()],
        lifespan=lifespan,
        token_verifier=token_verifier,
        description="The compliance staff's web application (a back-end-for-front-end).",
    )
    store: SessionStore = sessions
    app.state.sessions = store
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(SecurityHeaders, secure=settings.secure_cookie)
    app.add_readiness_check(mongo_check(mongo))
    return app


def create_app() -> PlatformApp:
    """The app `mmgen up` and uvicorn run (`mmgen.services` entry point)."""
    return build_app(ConsoleSettings())
