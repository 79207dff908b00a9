"""`GET /internal/subjects/{id}/export` in pages: `limit` honoured, `next_cursor` followed to
the end gives the whole export, each page audited, and a cursor the route never issued is a
400 problem.

The service runs in-process on the in-memory kernel (no broker or database is involved).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest_asyncio

from mmgen.events.kernel import in_memory_kernel
from mmgen.events.registry import EventRegistry
from mmgen.platform.pagination import encode_cursor
from mmgen.runtime.app import build_service_app
from mmgen.runtime.contract import ExportedEvent, SubjectExport
from mmgen.runtime.erasure import EXPORT_PAGE_MAX
from mmgen.runtime.service import ServiceRuntime
from mmgen.runtime.settings import EventServiceSettings
from mmgen.runtime.testing import Tokens, random_secrets

HELD = 25


class PagesSettings(EventServiceSettings):
    service_name: str = "pages"
    mongo_database: str = "pages"


class Holding:
    """An erasure participant holding `HELD` events and one record on every subject."""

    async def erase_subject(self, order: Any) -> Any:
        raise NotImplementedError

    async def anonymize_resource(self, order: Any) -> Any:
        raise NotImplementedError

    async def export(self, subject_id: str) -> SubjectExport:
        at = datetime(2027, 1, 31, 9, tzinfo=UTC)
        events = [
            ExportedEvent(
                event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{subject_id}/{n}")),
                event_type="pages.NoteWritten",
                occurred_at=at,
                action="create",
                categories=["communication"],
                data={"n": n},
            )
            for n in range(HELD)
        ]
        return SubjectExport(
            service="pages",
            subject_id=subject_id,
            generated_at=at,
            erased=False,
            records={"notes": ["a"]},
            events=events,
        )

    async def footprint(self, subject_id: str) -> Any:
        raise NotImplementedError


@pytest_asyncio.fixture
async def service() -> AsyncIterator[tuple[ServiceRuntime, httpx.AsyncClient, Tokens]]:
    settings = PagesSettings(environment="test", log_json=False, log_level="WARNING")
    settings = settings.model_copy(update=random_secrets(PagesSettings))
    registry = EventRegistry()
    kernel = in_memory_kernel(producer="pages", registry=registry)
    runtime = ServiceRuntime(settings, registry, kernel=kernel)
    runtime.erasure(Holding())
    tokens = Tokens.generate(audience="pages")
    app = build_service_app(
        runtime, title="pages", version="0", description="test", key_set=tokens.key_set()
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://pages.test") as client:
            yield runtime, client, tokens


async def exports_audited(runtime: ServiceRuntime, subject: str) -> list[Any]:
    store = runtime.kernel.store
    stored = await store.read_range(1, await store.last_seq() + 1)
    return [
        e for e in stored if e.event_type == "pages.SubjectExported" and e.subject_id == subject
    ]


async def test_an_export_larger_than_a_page_comes_back_whole_over_several_pages(
    service: tuple[ServiceRuntime, httpx.AsyncClient, Tokens],
) -> None:
    runtime, client, tokens = service
    subject = str(uuid.uuid4())
    _, headers = tokens.headers("service", "retention", purpose="legal_compliance")
    url = f"/internal/subjects/{subject}/export"
    pages: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 10} | ({"cursor": cursor} if cursor else {})
        response = await client.get(url, params=params, headers=headers)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        cursor = pages[-1]["next_cursor"]
        if cursor is None:
            break
        assert len(pages) < 10, "next_cursor never ran out"
    assert [len(p["events"]) for p in pages] == [10, 10, 5]
    assert [p["records"] for p in pages] == [{"notes": ["a"]}, {}, {}]
    numbers = [e["data"]["n"] for p in pages for e in p["events"]]
    assert numbers == list(range(HELD))
    audited = await exports_audited(runtime, subject)
    assert [a.data["events"] for a in audited] == [10, 10, 5]
    assert [a.data["records"] for a in audited] == [1, 0, 0]
    assert all(a.actor is not None and a.actor.id == "retention" for a in audited)
    assert all(a.purpose == "legal_compliance" for a in audited)


async def test_the_default_page_is_bounded_and_limits_outside_it_are_refused(
    service: tuple[ServiceRuntime, httpx.AsyncClient, Tokens],
) -> None:
    _, client, tokens = service
    subject = str(uuid.uuid4())
    _, headers = tokens.headers("service", "retention")
    url = f"/internal/subjects/{subject}/export"
    whole = await client.get(url, headers=headers)
    assert whole.status_code == 200, whole.text
    assert len(whole.json()["events"]) == HELD
    assert whole.json()["next_cursor"] is None
    for limit in (0, EXPORT_PAGE_MAX + 1):
        refused = await client.get(url, params={"limit": limit}, headers=headers)
        assert refused.status_code == 422
        assert refused.headers["content-type"].startswith("application/problem+json")


async def test_a_cursor_the_route_never_issued_is_a_400_problem_and_exports_nothing(
    service: tuple[ServiceRuntime, httpx.AsyncClient, Tokens],
) -> None:
    runtime, client, tokens = service
    subject = str(uuid.uuid4())
    _, headers = tokens.headers("service", "retention")
    url = f"/internal/subjects/{subject}/export"
    unknown_event = encode_cursor({"after": str(uuid.uuid4())})
    for cursor in ("not-base64-json!", "x" * 2000, unknown_event, encode_cursor({"seq": 3})):
        refused = await client.get(url, params={"cursor": cursor}, headers=headers)
        assert refused.status_code == 400, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["type"].endswith("invalid-cursor")
    assert await exports_audited(runtime, subject) == []


async def test_an_export_for_another_purpose_is_refused_and_audited(
    service: tuple[ServiceRuntime, httpx.AsyncClient, Tokens],
) -> None:
    """Exports answer requests of access, a legal obligation: `legal_compliance` only."""
    runtime, client, tokens = service
    subject = str(uuid.uuid4())
    _, headers = tokens.headers("service", "retention", purpose="support")
    refused = await client.get(f"/internal/subjects/{subject}/export", headers=headers)
    assert refused.status_code == 403, refused.text
    assert refused.json()["type"].endswith("purpose-not-allowed")
    assert refused.json()["allowed_purposes"] == ["legal_compliance"]
    assert await exports_audited(runtime, subject) == []
    store = runtime.kernel.store
    stored = await store.read_range(1, await store.last_seq() + 1)
    [denied] = [
        e for e in stored if e.event_type == "pages.AccessDenied" and e.subject_id == subject
    ]
    assert denied.data["code"] == "purpose-not-allowed"
    assert denied.purpose == "support"
    assert denied.actor is not None and denied.actor.id == "retention"
