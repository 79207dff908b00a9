"""Request body size limit, enforced before the body is parsed.

A declared `Content-Length` above the limit is refused at once with 413, without reading the
body. A body without one (chunked, streamed) is counted as it is received; the moment it passes
the limit the application's reading fails, whatever it was about to answer is dropped and a 413
problem goes out instead.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mmgen.platform.errors import RequestBodyTooLargeError
from mmgen.platform.problems import problem_response


class _BodyLimitExceeded(RequestBodyTooLargeError):
    """Raised from `receive` to abort the application's read of an oversized body."""


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            Request(scope),
            status=413,
            slug=RequestBodyTooLargeError.slug,
            title=RequestBodyTooLargeError.title,
            detail=f"the request body exceeds the limit of {self.max_body_bytes} bytes",
            extensions={"max_body_bytes": self.max_body_bytes},
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(scope, receive, send)
            return

        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
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
            await self._refuse(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
