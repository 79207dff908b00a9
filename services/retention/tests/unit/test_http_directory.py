"""The HTTP service directory against an in-process app that plays identity and a service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Header, Request, Response

from mmgen.platform.service_tokens import ServiceTokenProvider
from mmgen.retention.adapters.directory import (
    HttpAuditLogAnswers,
    HttpAuditLogHeads,
    HttpServiceDirectory,
)
from mmgen.retention.domain.errors import ServiceUnreachableError

SUBJECT = "0195f3a0-0000-7000-8000-00000000a11c"


def _footprint(**changes: Any) -> dict[str, Any]:
    """A footprint as the contract shapes it, with `changes` applied."""
    return {
        "service": "projects",
        "subject_id": SUBJECT,
        "key_erased": True,
        "categories": {"communication": {"records": 2, "readable_personal_fields": 0}},
        "total_records": 2,
        "readable_personal_fields": 0,
        **changes,
    }


def _event(n: int) -> dict[str, Any]:
    return {
        "event_id": f"e{n}",
        "event_type": "projects.ProjectCreated",
        "occurred_at": "2027-01-31T09:00:00Z",
        "action": "create",
        "data": {"n": n},
    }


class World:
    """What the fake services answer, and what they saw."""

    def __init__(self) -> None:
        self.tokens_issued = 0
        self.valid = {"t1"}
        self.seen: list[dict[str, str | None]] = []
        self.footprint: dict[str, Any] = _footprint()
        self.status = 200
        #: Events the fake service holds on the subject, and the most it puts on one page.
        self.events = 0
        self.page = 3
        self.queries: list[dict[str, str]] = []
        #: The audit log's entries of erasure answers, by event id.
        self.answers: dict[str, dict[str, Any]] = {}


def make_app(world: World) -> FastAPI:
    app = FastAPI()

    @app.post("/auth/service-token")
    async def token(body: dict[str, str]) -> dict[str, Any]:
        assert body == {"service": "retention", "secret": "s3cret"}
        world.tokens_issued += 1
        return {"access_token": f"t{world.tokens_issued}", "expires_in": 300}

    @app.get("/internal/subjects/{subject_id}/{what}")
    async def internal(
        subject_id: str,
        what: str,
        request: Request,
        response: Response,
        authorization: str | None = Header(default=None),
        x_purpose: str | None = Header(default=None),
    ) -> Any:
        world.seen.append({"authorization": authorization, "purpose": x_purpose})
        if authorization is None or authorization.removeprefix("Bearer ") not in world.valid:
            response.status_code = 401
            return {}
        response.status_code = world.status
        if what == "footprint":
            return world.footprint
        world.queries.append(dict(request.query_params))
        start = int(request.query_params.get("cursor", "0"))
        size = min(int(request.query_params["limit"]), world.page)
        events = [_event(n) for n in range(start, min(start + size, world.events))]
        more = start + size < world.events
        return {
            "service": "projects",
            "subject_id": subject_id,
            "generated_at": "2027-01-31T09:00:00Z",
            "erased": False,
            "records": {"n": 1} if start == 0 else {},
            "events": events,
            "next_cursor": str(start + size) if more else None,
        }

    @app.get("/purposes")
    async def purposes() -> dict[str, Any]:
        return {"items": [{"id": "support", "legal_basis": "legitimate_interests"}]}

    @app.get("/audit/erasure-answers/{event_id}")
    async def erasure_answer(
        event_id: str,
        wait: float,
        response: Response,
        authorization: str | None = Header(default=None),
    ) -> Any:
        world.seen.append({"authorization": authorization, "wait": str(wait)})
        entry = world.answers.get(event_id)
        response.status_code = 404 if entry is None else world.status
        return entry or {"type": "urn:mmgen:problem:audit-not-found"}

    @app.get("/audit/checkpoints/latest")
    async def latest() -> dict[str, Any]:
        return {"tree_size": 7, "root_hash": "ab" * 32, "note": "n\n", "timestamp": "x"}

    return app


@pytest.fixture
async def setup() -> AsyncIterator[tuple[World, HttpServiceDirectory, HttpAuditLogHeads]]:
    world = World()
    transport = httpx.ASGITransport(app=make_app(world))
    async with httpx.AsyncClient(transport=transport) as client:
        tokens = ServiceTokenProvider("http://identity.test", "retention", "s3cret", client=client)
        urls = {"projects": "http://projects.test/", "consent": "http://consent.test"}
        directory = HttpServiceDirectory(
            urls=urls, services=["projects"], tokens=tokens, client=client, max_bytes=4096
        )
        heads = HttpAuditLogHeads(url="http://consent.test", tokens=tokens, client=client)
        yield world, directory, heads


async def test_footprint_export_purposes_and_head(setup: Any) -> None:
    world, directory, heads = setup
    footprint = await directory.footprint("projects", SUBJECT)
    assert footprint.categories["communication"].records == 2
    assert world.seen[-1] == {"authorization": "Bearer t1", "purpose": "legal_compliance"}
    export = await directory.export("projects", SUBJECT)
    assert export.records == {"n": 1}
    assert world.tokens_issued == 1  # the token is reused
    assert [p.id for p in await directory.purposes()] == ["support"]
    head = await heads.latest()
    assert (head.tree_size, head.note) == (7, "n\n")


async def test_an_erasure_answer_entry_is_asked_for_by_event_id(setup: Any) -> None:
    world, directory, _ = setup
    answers = HttpAuditLogAnswers(
        url="http://consent.test", tokens=directory.caller.tokens, client=directory.caller.client
    )
    entry = {
        "seq": 41,
        "event_id": "ev-1",
        "producer": "projects",
        "event_type": "projects.SubjectErased",
        "action": "erase",
        "subject_id": SUBJECT,
        "occurred_at": "2027-01-31T09:00:00Z",
    }
    assert await answers.entry("ev-1") is None  # not in the log yet: left to the feed
    assert world.seen[-1] == {"authorization": "Bearer t1", "wait": "4.0"}
    world.answers["ev-1"] = entry
    record = await answers.entry("ev-1")
    assert record is not None and (record.seq, record.producer) == (41, "projects")
    # Anything else is a failure, never an acknowledgement.
    world.answers["ev-2"] = {**entry, "event_id": "ev/other"}
    world.answers["ev-3"] = {"seq": "x"}
    for event_id in ("ev-2", "ev-3"):
        with pytest.raises(ServiceUnreachableError):
            await answers.entry(event_id)
    world.status = 500
    with pytest.raises(ServiceUnreachableError, match="HTTP 500"):
        await answers.entry("ev-1")


async def test_an_export_is_read_page_after_page_until_next_cursor_is_null(setup: Any) -> None:
    world, directory, _ = setup
    world.events = 8
    export = await directory.export("projects", SUBJECT)
    assert [e.data["n"] for e in export.events] == list(range(8))
    assert export.records == {"n": 1}
    assert (export.events_truncated, export.next_cursor) == (False, None)
    assert [q.get("cursor") for q in world.queries] == [None, "3", "6"]
    assert all(q["limit"] == "1000" for q in world.queries)


async def test_an_export_stops_after_the_page_bound_and_says_it_is_truncated(
    setup: Any,
) -> None:
    world, directory, _ = setup
    world.events = 100
    directory.max_export_pages = 2
    export = await directory.export("projects", SUBJECT)
    assert [e.data["n"] for e in export.events] == list(range(6))
    assert export.events_truncated is True
    assert len(world.queries) == 2


async def test_a_refused_token_is_fetched_again_once(setup: Any) -> None:
    world, directory, _ = setup
    await directory.footprint("projects", SUBJECT)
    world.valid = {"t2"}  # identity rotated: the cached token is refused
    await directory.footprint("projects", SUBJECT)
    assert world.tokens_issued == 2
    world.valid = set()
    with pytest.raises(ServiceUnreachableError, match="401"):
        await directory.footprint("projects", SUBJECT)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"status": 503}, "HTTP 503"),
        ({"footprint": _footprint(service="profiles")}, "another service"),
        ({"footprint": _footprint(subject_id="someone-else")}, "another"),
        ({"footprint": _footprint(total_records=-1)}, "wrong shape"),
        ({"footprint": {"service": "projects", "subject_id": SUBJECT}}, "wrong shape"),
        ({"footprint": _footprint(pad="x" * 5000)}, "exceeds"),
        ({"footprint": _footprint(a_member_the_contract_lacks=1)}, "wrong shape"),
    ],
)  # fmt: skip
async def test_bad_answers_are_failures_never_success(
    setup: Any, change: dict[str, Any], message: str
) -> None:
    world, directory, _ = setup
    for key, value in change.items():
        setattr(world, key, value)
    with pytest.raises(ServiceUnreachableError, match=message):
        await directory.footprint("projects", SUBJECT)


async def test_unreachable_service_and_identity() -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(_refuse)) as client:
        tokens = ServiceTokenProvider("http://identity.test", "retention", "x", client=client)
        directory = HttpServiceDirectory(
            urls={"projects": "http://p", "consent": "http://c"},
            services=["projects"],
            tokens=tokens,
            client=client,
        )
        with pytest.raises(ServiceUnreachableError) as caught:
            await directory.footprint("projects", SUBJECT)
        assert caught.value.service == "identity"
    with pytest.raises(ValueError, match="no URL"):
        HttpServiceDirectory(urls={}, services=["projects"], tokens=tokens, client=client)


def _refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)
