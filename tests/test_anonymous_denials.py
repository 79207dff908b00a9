"""10,000 anonymous 401s against the running identity and projects (issue 14): the counters show
every one, the audit log a bounded number of sampled entries.

Half the requests carry no token, half garbage for one, at a route nothing else in the session
calls anonymously; they go out pipelined on a few connections (`tests/burst.py`), so the
services are what is measured, not an HTTP client's overhead. Each service audits one sampled
`AccessDenied` per (method, route, status, code) per `denial_sample_seconds` (60 s): each key
gives at most one entry per window the burst spans. Which entries the services wrote is read
from their own event stores (read only); the test waits for exactly those in the audit log,
read by a compliance officer through consent's `/audit/entries`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
from pymongo import AsyncMongoClient

from mmgen.localstack.pytest_plugin import Infra
from mmgen.platform.http import service_client
from tests import burst, metrics
from tests.officers import compliance_officer

TOTAL = 10_000
#: Keep-alive connections per service, each carrying its share pipelined.
CONNECTIONS = 16
DEADLINE_S = 60.0
#: `denial_sample_seconds`, which the session's stack keeps at its default.
SAMPLE_WINDOW_S = 60.0
#: service → (a route template needing a token, a path of it)
TARGETS = {
    "identity": ("/users/{user_id}", f"/users/{uuid.uuid4()}"),
    "projects": (
        "/projects/{project_id}/files/{file_id}",
        f"/projects/{uuid.uuid4()}/files/{uuid.uuid4()}",
    ),
}


def denials(exposition: str, route: str) -> dict[str, float]:
    """`access_denials_total` of anonymous GETs of `route` answered 401, by problem code."""
    return metrics.by_label(
        exposition,
        "access_denials_total",
        "code",
        method="GET",
        route=route,
        status="401",
        caller="anonymous",
    )


async def sampled_events(infra: Infra, system: Any, service: str, route: str) -> list[Any]:
    """The anonymous `AccessDenied` events the service stored for `route`."""
    mongo: Any = AsyncMongoClient(infra.mongo_uri, directConnection=True)
    try:
        found: list[Any] = await (
            mongo[system.database(service)]["events"]
            .find(
                {
                    "event_type": f"{service}.AccessDenied",
                    "data.route": route,
                    "actor": None,
                }
            )
            .to_list(None)
        )
        return found
    finally:
        await mongo.close()


async def audited_ids(
    http: httpx.AsyncClient, consent: str, officer: Any, producer: str
) -> set[str]:
    """Event ids of every `deny` entry of `producer` in the audit log."""
    ids: set[str] = set()
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"producer": producer, "action": "deny", "limit": 500}
        if cursor:
            params["cursor"] = cursor
        page = await http.get(
            f"{consent}/audit/entries", params=params, headers=officer.audit_headers()
        )
        assert page.status_code == 200, page.text
        body = page.json()
        ids.update(entry["event_id"] for entry in body["items"])
        cursor = body["next_cursor"]
        if not cursor:
            return ids


async def test_ten_thousand_anonymous_401s_are_counted_all_and_audited_bounded(
    system: Any, infra: Infra
) -> None:
    consent = system.url("consent")
    async with service_client(60.0) as http:
        officer = await compliance_officer(http, system)
        before = {
            s: denials(await metrics.read(http, system.url(s)), route)
            for s, (route, _) in TARGETS.items()
        }

        def refusals(service: str) -> list[tuple[str, dict[str, str]]]:
            path = TARGETS[service][1]
            share = TOTAL // len(TARGETS)
            return [
                (path, {} if n % 2 else {"Authorization": f"Bearer garbage.{n}.token"})
                for n in range(share)
            ]

        started = time.monotonic()
        answers = await asyncio.gather(
            *(burst.get_all(system.url(s), refusals(s), CONNECTIONS) for s in TARGETS)
        )
        elapsed = time.monotonic() - started
        statuses = [status for service in answers for status in service]
        assert statuses == [401] * TOTAL
        # One sampled entry per key and window: the windows the burst spanned.
        windows = 1 + int(elapsed // SAMPLE_WINDOW_S)

        for service, (route, _) in TARGETS.items():
            # The counters: every refusal, each under its code (no token, an invalid one).
            after = denials(await metrics.read(http, system.url(service)), route)
            counted = {code: after[code] - before[service].get(code, 0.0) for code in after}
            counted = {code: n for code, n in counted.items() if n}
            assert sum(counted.values()) == TOTAL // len(TARGETS), (service, counted)
            assert len(counted) == 2, (service, counted)

            # The audit: exactly the sampled entries the service wrote, and few of them.
            deadline = time.monotonic() + DEADLINE_S
            while True:
                stored = await sampled_events(infra, system, service, route)
                ids = {event["_id"] for event in stored}
                if ids and ids <= await audited_ids(http, consent, officer, service):
                    break
                assert time.monotonic() < deadline, f"{service}: sampled denials not in the log"
                await asyncio.sleep(0.5)
            assert 1 <= len(stored) <= windows * len(counted), (service, len(stored), elapsed)
            for event in stored:
                assert event["data"]["status"] == 401
                assert event["data"]["occurrences"] >= 1
            assert sum(e["data"]["occurrences"] for e in stored) <= TOTAL // len(TARGETS)
