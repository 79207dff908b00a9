"""RFC 9457 problem details: one rendering for every error a service returns.

`install_problem_handlers` wires FastAPI so HTTP errors, validation errors, `ProblemError`s and
registered domain exceptions all answer `application/problem+json` with `type`, `title`,
`status`, `detail` and `instance` (plus `trace_id`, so a user can quote it to support).
Unhandled exceptions are answered by `UnhandledErrorMiddleware` with a 500 that carries no
exception text. Refusals (401/403) are handed to the access-denial recorder here, in one place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mmgen.platform.denials import DenialReason, record_access_denial
from mmgen.platform.errors import ProblemError, problem_type, status_slug, status_title

PROBLEM_JSON = "application/problem+json"
DENIAL_STATUSES = frozenset({401, 403})

logger = logging.getLogger("mmgen.platform.errors")


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_JSON


def current_trace_id() -> str | None:
    """Hex trace id of the active span, or None outside a recorded trace."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def problem_body(
    *,
    status: int,
    slug: str,
    title: str | None = None,
    detail: str | None = None,
    instance: str | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON object of a problem; extension members never override the standard ones."""
    body: dict[str, Any] = {
        "type": problem_type(slug),
        "title": title or status_title(status),
        "status": status,
        "detail": detail or title or status_title(status),
        "instance": instance,
    }
    for key, value in (extensions or {}).items():
        body.setdefault(key, value)
    trace_id = current_trace_id()
    if trace_id is not None:
        body.setdefault("trace_id", trace_id)
    return body


def problem_response(
    request: Request | None,
    *,
    status: int,
    slug: str | None = None,
    title: str | None = None,
    detail: str | None = None,
    extensions: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> ProblemResponse:
    instance = request.url.path if request is not None else None
    body = problem_body(
        status=status,
        slug=slug or status_slug(status),
        title=title,
        detail=detail,
        instance=instance,
        extensions=extensions,
    )
    return ProblemResponse(body, status_code=status, headers=dict(headers or {}))


@dataclass(frozen=True)
class ProblemSpec:
    """How a service's own exception type renders: status, title, slug and detail.

    `detail` is a fixed string or a function of the exception; by default the exception's
    message is used — so never put personal data into exception messages.
    """

    status: int
    title: str | None = None
    slug: str | None = None
    detail: str | Callable[[Any], str] | None = None
    extensions: Callable[[Any], Mapping[str, Any]] | None = None

    def render(self, exc: BaseException) -> tuple[str, str, str, dict[str, Any]]:
        slug = self.slug or status_slug(self.status)
        title = self.title or status_title(self.status)
        if callable(self.detail):
            detail = self.detail(exc)
        elif self.detail is not None:
            detail = self.detail
        else:
            detail = str(exc) or title
        extensions = dict(self.extensions(exc)) if self.extensions else {}
        return slug, title, detail, extensions


async def _respond(
    request: Request,
    *,
    status: int,
    slug: str,
    title: str,
    detail: str,
    extensions: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    reason: str | None = None,
) -> ProblemResponse:
    if status in DENIAL_STATUSES:
        await record_access_denial(
            request, DenialReason(code=slug, status=status, detail=detail, reason=reason)
        )
    return problem_response(
        request,
        status=status,
        slug=slug,
        title=title,
        detail=detail,
        extensions=extensions,
        headers=headers,
    )


async def http_exception_handler(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    detail = exc.detail if isinstance(exc.detail, str) else status_title(status)
    headers = dict(exc.headers or {})
    if status == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    return await _respond(
        request,
        status=status,
        slug=status_slug(status),
        title=status_title(status),
        detail=detail,
        headers=headers,
    )


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(part) for part in loc]
    if len(parts) > 1 and parts[0] in {"body", "query", "path", "header", "cookie"}:
        parts = parts[1:]
    return ".".join(parts)


async def validation_exception_handler(request: Request, exc: Exception) -> ProblemResponse:
    """422 listing each invalid field; never echoes the submitted values (they may be secrets).

    A body that is not JSON at all is a 400 saying so, with the character position where
    parsing failed (FastAPI reports it as a validation error whose "field" is that position).
    """
    assert isinstance(exc, RequestValidationError)
    malformed = next((e for e in exc.errors() if e.get("type") == "json_invalid"), None)
    if malformed is not None:
        loc = malformed.get("loc", ())
        position = loc[-1] if loc and isinstance(loc[-1], int) else None
        reason = str((malformed.get("ctx") or {}).get("error") or "JSON decode error")
        where = f" at character {position}" if position is not None else ""
        return await _respond(
            request,
            status=400,
            slug="malformed-json",
            title="Malformed JSON body",
            detail=f"the request body is not valid JSON: {reason}{where}",
            extensions={"position": position},
        )
    errors: list[dict[str, Any]] = [
        {
            "field": _field_name(error.get("loc", ())),
            "loc": [str(part) for part in error.get("loc", ())],
            "msg": str(error.get("msg", "")),
            "type": str(error.get("type", "")),
        }
        for error in exc.errors()
    ]
    fields = ", ".join(sorted({str(error["field"]) for error in errors}))
    return await _respond(
        request,
        status=422,
        slug="validation-failed",
        title="Request validation failed",
        detail=f"invalid fields: {fields}" if fields else "the request is invalid",
        extensions={"errors": errors},
    )


async def problem_error_handler(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, ProblemError)
    headers = dict(exc.headers)
    if exc.status == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    return await _respond(
        request,
        status=exc.status,
        slug=exc.slug,
        title=exc.title,
        detail=exc.detail,
        extensions=exc.extensions,
        headers=headers,
        reason=_audit_reason(exc),
    )


def _audit_reason(exc: ProblemError) -> str | None:
    """An error's `reason` for the audit (e.g. why a token was invalid), if it has one."""
    reason = getattr(exc, "reason", None)
    return reason if isinstance(reason, str) else None


def registered_problem_handler(
    specs: Mapping[type[Exception], ProblemSpec],
) -> Callable[[Request, Exception], Any]:
    """Handler for exceptions registered with `register_problem` (most specific class wins)."""

    async def handler(request: Request, exc: Exception) -> ProblemResponse:
        spec = next((specs[cls] for cls in type(exc).__mro__ if cls in specs), None)
        if spec is None:  # pragma: no cover - Starlette only calls us for registered types
            raise exc
        slug, title, detail, extensions = spec.render(exc)
        return await _respond(
            request,
            status=spec.status,
            slug=slug,
            title=title,
            detail=detail,
            extensions=extensions,
        )

    return handler


def internal_error_response(request: Request | None) -> ProblemResponse:
    return problem_response(
        request,
        status=500,
        slug="internal-error",
        title="Internal Server Error",
        detail="An unexpected error occurred. Quote the trace_id when reporting it.",
    )


def _log_unhandled(exc: BaseException, scope: Scope) -> None:
    span = trace.get_current_span()
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
    logger.error(
        "unhandled exception while serving a request",
        exc_info=exc,
        extra={"method": scope.get("method"), "path": scope.get("path")},
    )


async def server_error_handler(request: Request, exc: Exception) -> ProblemResponse:
    """Backstop for errors raised outside the catch-all middleware (Starlette's 500 handler)."""
    _log_unhandled(exc, request.scope)
    return internal_error_response(request)


class UnhandledErrorMiddleware:
    """Turns any exception that escaped the handlers into a bare 500 problem.

    Sits inside the tracing and metrics middlewares, so the failure is logged with the
    request's trace id and counted as a 500, and nothing about the exception reaches the client.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            _log_unhandled(exc, scope)
            if started:
                raise
            response = internal_error_response(Request(scope))
            await response(scope, receive, send)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, http_exception_handler)
    app.add_exception_handler(RequestValidationError, validation_exception_handler)
    app.add_exception_handler(ProblemError, problem_error_handler)
    app.add_exception_handler(Exception, server_error_handler)
