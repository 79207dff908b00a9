"""Fixtures for the platform's tests: a signing key, and a small app built with `create_app`
whose routes exercise every convention (auth, purposes, problems, limits, pagination)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from mmgen.platform import (
    BadRequestError,
    CursorPage,
    InMemoryDenialRecorder,
    Page,
    PlatformApp,
    ServiceSettings,
    create_app,
)
from mmgen.platform.auth import (
    CurrentPrincipal,
    InMemorySubjectDenylist,
    Principal,
    ProcessingPurpose,
    SigningKey,
    StaticKeySet,
    TokenVerifier,
    accepts_purposes,
    issue_token,
    require_roles,
    require_service,
)

test_logger = logging.getLogger("mmgen.platform.tests")


class SlotTakenError(Exception):
    """A service's own domain error, mapped to 409 with `register_problem`."""


class Widget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=50)
    size: int = Field(ge=1)


PersonalDataReader = Annotated[
    Principal, Depends(require_roles("client", "staff", "compliance", "admin"))
]
#: The purposes `/subjects/{id}` accepts (`payment_processing` and `security` do not justify it).
SUBJECT_PURPOSES = ("project_execution", "support", "legal_compliance")
SubjectPurpose = Annotated[ProcessingPurpose | None, Depends(accepts_purposes(*SUBJECT_PURPOSES))]


def build_router() -> APIRouter:
    router = APIRouter()

    @router.get("/widgets/{widget_id}", name="get_widget")
    async def get_widget(widget_id: int, principal: CurrentPrincipal) -> dict[str, Any]:
        return {"widget_id": widget_id, "subject": principal.subject_id, "role": principal.role}

    @router.post("/widgets", name="create_widget", status_code=201)
    async def create_widget(widget: Widget, principal: CurrentPrincipal) -> dict[str, Any]:
        return {"name": widget.name, "size": widget.size}

    @router.get("/subjects/{subject_id}", name="read_subject")
    async def read_subject(
        subject_id: str, principal: PersonalDataReader, purpose: SubjectPurpose
    ) -> dict[str, Any]:
        return {"subject_id": subject_id, "purpose": purpose, "role": principal.role}

    @router.get("/projects/{project_id}/secret", name="read_project_secret")
    async def read_project_secret(project_id: str, principal: CurrentPrincipal) -> None:
        # A service's own refusal (not a member), expressed as a plain HTTPException.
        raise HTTPException(status_code=403, detail="not a member of this project")

    @router.post("/me/second-factor", name="enrol_second_factor")
    async def enrol_second_factor(
        principal: Annotated[
            Principal, Depends(require_roles("staff", "compliance", "admin", single_factor=True))
        ],
    ) -> dict[str, Any]:
        return {"subject": principal.subject_id, "amr": list(principal.amr)}

    @router.get("/internal/ping", name="internal_ping")
    async def internal_ping(
        caller: Annotated[Principal, Depends(require_service("retention"))],
    ) -> dict[str, str]:
        return {"caller": caller.subject_id}

    @router.get("/boom", name="boom")
    async def boom() -> None:
        raise RuntimeError("database password is hunter2")

    @router.get("/conflict", name="conflict")
    async def conflict() -> None:
        raise SlotTakenError("slot 7 is taken")

    @router.get("/bad", name="bad")
    async def bad() -> None:
        raise BadRequestError("the widget colour is not a colour")

    @router.get("/numbers", name="list_numbers")
    async def list_numbers(page: Page) -> CursorPage[int]:
        start = int((page.position or {}).get("after", -1)) + 1
        fetched = [n for n in range(start, min(start + page.limit + 1, 7))]
        return page.page(fetched, lambda n: {"after": n})

    @router.post("/uploads", name="upload")
    async def upload(request: Request) -> dict[str, int]:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        return {"received": size}

    @router.get("/log", name="log_line")
    async def log_line() -> dict[str, str]:
        test_logger.info("inside the request", extra={"marker": "log-test"})
        return {"ok": "yes"}

    return router


@pytest.fixture
def signing_key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def denylist() -> InMemorySubjectDenylist:
    return InMemorySubjectDenylist()


@pytest.fixture
def recorder() -> InMemoryDenialRecorder:
    return InMemoryDenialRecorder()


@pytest.fixture
def settings() -> ServiceSettings:
    return ServiceSettings(environment="test", service_name="platform-test", max_body_bytes=1024)


@pytest.fixture
def make_app(
    settings: ServiceSettings,
    signing_key: SigningKey,
    denylist: InMemorySubjectDenylist,
    recorder: InMemoryDenialRecorder,
) -> Callable[..., PlatformApp]:
    def make(**overrides: Any) -> PlatformApp:
        app_settings = overrides.pop("settings", settings)
        kwargs: dict[str, Any] = {
            "title": "platform test",
            "version": "0.0.1",
            "routers": [build_router()],
            "token_verifier": TokenVerifier(
                StaticKeySet.of(signing_key), audience="projects", denylist=denylist, leeway=0
            ),
            "denial_recorder": recorder,
        }
        kwargs.update(overrides)
        app = create_app(app_settings, **kwargs)
        app.register_problem(SlotTakenError, status=409, title="Slot taken", slug="slot-taken")
        return app

    return make


@asynccontextmanager
async def serve_in_process(app: PlatformApp) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan, reached through httpx's ASGI transport."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@pytest.fixture
def serve() -> Callable[[PlatformApp], Any]:
    return serve_in_process


@pytest.fixture
async def client(make_app: Callable[..., PlatformApp]) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_in_process(make_app()) as c:
        yield c


@pytest.fixture
def token(signing_key: SigningKey) -> Callable[..., str]:
    """`token(role)` → a valid access token for a fresh random subject (or `subject=`)."""

    def make(role: str = "client", **kwargs: Any) -> str:
        kwargs.setdefault("subject", str(uuid.uuid4()))
        if role in {"staff", "compliance", "admin"}:  # signed in with TOTP, as they must
            kwargs.setdefault("amr", ["pwd", "otp"])
        return issue_token(signing_key, role=role, **kwargs)

    return make


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def auth() -> Callable[[str], dict[str, str]]:
    return bearer
