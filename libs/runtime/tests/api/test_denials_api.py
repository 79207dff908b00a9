"""Refusals on a service built by `build_service_app`: anonymous and invalid-token ones are
counted each but audited as a bounded sample; a verified caller's are audited one by one.

The service runs in-process on the in-memory kernel: what is asserted is what its event store
holds and what `/metrics` says.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from mmgen.events.kernel import in_memory_kernel
from mmgen.events.registry import EventRegistry
from mmgen.runtime.app import build_service_app
from mmgen.runtime.service import ServiceRuntime
from mmgen.runtime.settings import EventServiceSettings
from mmgen.runtime.testing import Tokens, random_secrets

ROUTE = "/internal/subjects/{subject_id}/footprint"


class GateSettings(EventServiceSettings):
    service_name: str = "gate"
    mongo_database: str = "gate"


class Nothing:
    """An erasure participant that holds nothing (the routes under test only refuse)."""

    async def erase_subject(self, order: Any) -> Any:
        raise NotImplementedError

    async def anonymize_resource(self, order: Any) -> Any:
        raise NotImplementedError

    async def export(self, subject_id: str) -> Any:
        raise NotImplementedError

    async def footprint(self, subject_id: str) -> Any:
        raise NotImplementedError


@pytest_asyncio.fixture
async def service() -> AsyncIterator[tuple[ServiceRuntime, httpx.AsyncClient, Tokens]]:
    # One sampling window for the whole test (10,000 requests take a while on a shared machine).
    settings = GateSettings(
        environment="test", log_json=False, log_level="WARNING", denial_sample_seconds=3600
    )
    settings = settings.model_copy(update=random_secrets(GateSettings))
    registry = EventRegistry()
    kernel = in_memory_kernel(producer="gate", registry=registry)
    runtime = ServiceRuntime(settings, registry, kernel=kernel)
    runtime.erasure(Nothing())  # type: ignore[arg-type]
    tokens = Tokens.generate(audience="gate")
    app = build_service_app(
        runtime, title="gate", version="0", description="test", key_set=tokens.key_set()
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gate.test") as client:
            yield runtime, client, tokens


async def denials(runtime: ServiceRuntime) -> list[Any]:
    store = runtime.kernel.store
    stored = await store.read_range(1, await store.last_seq() + 1)
    return [e for e in stored if e.event_type == "gate.AccessDenied"]


def counted(text: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "access_denials_total" and all(
                sample.labels.get(k) == v for k, v in labels.items()
            ):
                total += sample.value
    return total


async def test_10000_anonymous_refusals_are_counted_each_and_audited_a_few_times(
    service: tuple[ServiceRuntime, httpx.AsyncClient, Tokens],
) -> None:
    runtime, client, _ = service

    async def refused(n: int) -> int:
        headers = {"Authorization": "Bearer garbage"} if n % 2 else {}
        response = await client.get(f"/internal/subjects/{uuid.uuid4()}/footprint", headers=headers)
        return response.status_code

    for start in range(0, 10_000, 250):
        statuses = await asyncio.gather(*(refused(n) for n in range(start, start + 250)))
        assert set(statuses) == {401}

    recorded = await denials(runtime)
    # One per (route, status, code) and window: no token, and an invalid one.
    assert len(recorded) == 2, len(recorded)
    assert {e.data["code"] for e in recorded} <= {"unauthenticated", "invalid-token"}
    assert all(e.actor is None and e.data["route"] == ROUTE for e in recorded)
    metrics = (await client.get("/metrics")).text
    assert counted(metrics, route=ROUTE, caller="anonymous") == 10_000
    assert counted(metrics, route=ROUTE, code="unauthenticated") == 5_000
    assert counted(metrics, route=ROUTE, code="invalid-token") == 5_000


async def test_a_verified_callers_refusals_are_each_audited(
    service: tuple[ServiceRuntime, httpx.AsyncClient, Tokens],
) -> None:
    runtime, client, tokens = service
    subject, headers = tokens.headers("client")
    for _ in range(20):
        response = await client.get(f"/internal/subjects/{subject}/footprint", headers=headers)
        assert response.status_code == 403
    recorded = await denials(runtime)
    assert len(recorded) == 20
    assert all(e.actor is not None and e.actor.id == subject for e in recorded)
    assert all(e.data["occurrences"] == 1 for e in recorded)
    metrics = (await client.get("/metrics")).text
    assert counted(metrics, route=ROUTE, caller="authenticated") == 20
