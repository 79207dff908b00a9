"""Request body size limit, enforced before the body is parsed.

A declared `Content-Length` above the limit is refused at once with 413, without reading the
body. A body without one (chunked, streamed) is counted as it is received; the moment it passes
the limit the application's reading fails, whatever it was about to answer is dropped and a 413
problem goes out instead.

The limit is the app's (`max_body_bytes`), except on a route that declares its own with
`@body_limit(n)` — an upload route that streams its body (and counts what it keeps) takes a
larger one without raising the limit of every other route:

    @router.post("/projects/{project_id}/files", name="upload_file")
    @body_limit(settings.max_file_bytes + MULTIPART_OVERHEAD)
    async def upload_file(...): ...

When some route has a limit of its own, the limit of a request is settled when the app first
reads its body: routing has chosen the route by then (its dependencies, such as token checks,
have run), and nothing of the body has been read. A declared `Content-Length` above it is
refused at that moment, before a byte is received.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mmgen.platform.errors import RequestBodyTooLargeError
from mmgen.platform.problems import problem_response

F = TypeVar("F", bound=Callable[..., Any])
_ROUTE_LIMIT = "__mmgen_max_body_bytes__"


def body_limit(max_body_bytes: int) -> Callable[[F], F]:
    """Give one route (its endpoint function) a request-body limit of its own."""
    if max_body_bytes < 0:
        raise ValueError("a body limit cannot be negative")

    def mark(endpoint: F) -> F:
        setattr(endpoint, _ROUTE_LIMIT, max_body_bytes)
        return endpoint

    return mark


def route_body_limit(route: BaseRoute) -> int | None:
    """The limit a route declared with `@body_limit`, if any."""
    limit = getattr(getattr(route, "endpoint", None), _ROUTE_LIMIT, None)
    return limit if isinstance(limit, int) else None


def declares_route_limits(routes: Iterable[BaseRoute]) -> bool:
    return any(route_body_limit(route) is not None for route in routes)


class _BodyLimitExceeded(RequestBodyTooLargeError):
    """Raised from `receive` to abort the application's read of an oversized body."""


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int, *, route_limits: bool = False) -> None:
        """`route_limits`: some route declares its own limit (`create_app` finds out)."""
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.route_limits = route_limits

    def _limit_for(self, scope: Scope) -> int:
        """The limit of the route routing chose (the app's when it declares none)."""
        route = scope.get("route")
        endpoint = getattr(route, "endpoint", None) or scope.get("endpoint")
        own = getattr(endpoint, _ROUTE_LIMIT, None)
        return own if isinstance(own, int) else self.max_body_bytes

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = problem_response(
            Request(scope),
            status=413,
            slug=RequestBodyTooLargeError.slug,
            title=RequestBodyTooLargeError.title,
            detail=f"the request body exceeds the limit of {limit} bytes",
            extensions={"max_body_bytes": limit},
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        limit: int | None = None
        if not self.route_limits:
            limit = self.max_body_bytes
            if declared is not None and declared > limit:
                await self._refuse(scope, receive, send, limit)
                return

        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal limit, received, exceeded
            if limit is None:
                limit = self._limit_for(scope)
                if declared is not None and declared > limit:
                    exceeded = True
                    raise _BodyLimitExceeded()
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _BodyLimitExceeded()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # the app's answer to a truncated body is replaced by our 413
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not exceeded or started:
                raise
        if exceeded and not started:
            await self._refuse(scope, receive, send, limit or self.max_body_bytes)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
