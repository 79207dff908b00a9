"""The platform's exception root and the problem-carrying error base services derive from.

Kept free of FastAPI imports so a service's domain layer may derive its exceptions from
`ProblemError` (or stay pure and be mapped with `register_problem`) without pulling in web code.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, ClassVar

PROBLEM_TYPE_PREFIX = "urn:mmgen:problem:"


def problem_type(slug: str) -> str:
    """The `type` URI of a problem: a stable URN, so clients can switch on it."""
    return slug if ":" in slug else f"{PROBLEM_TYPE_PREFIX}{slug}"


def status_slug(status: int) -> str:
    """`404` → `not-found`: the slug used for problems that only carry an HTTP status."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return f"http-{status}"
    return phrase.lower().replace(" ", "-").replace("'", "")


def status_title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


class PlatformError(Exception):
    """Root of every exception raised by `mmgen.platform`."""


class ConfigurationError(PlatformError):
    """The service is wired or configured wrongly; raised at start-up, never per request."""


class ProblemError(PlatformError):
    """An error that knows its RFC 9457 rendering.

    Subclasses set `status`, `slug` (the last part of the `type` URN) and `title` as class
    attributes; instances add a `detail` and optional extension members. The app factory turns
    any `ProblemError` raised while handling a request into an `application/problem+json`
    response, so domain code never needs `HTTPException`.
    """

    status: ClassVar[int] = 400
    slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad Request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        extensions: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.detail = detail or self.title
        self.extensions: dict[str, Any] = dict(extensions or {})
        self.headers: dict[str, str] = dict(headers or {})
        super().__init__(self.detail)

    @property
    def type(self) -> str:
        return problem_type(self.slug)


class BadRequestError(ProblemError):
    status = 400
    slug = "bad-request"
    title = "Bad Request"


class RequestBodyTooLargeError(ProblemError):
    status = 413
    slug = "request-body-too-large"
    title = "Request body too large"


class ServiceUnavailableError(ProblemError):
    status = 503
    slug = "service-unavailable"
    title = "Service unavailable"
