"""API tests: the read models follow the event store through the runtime's projector — after
events appended without their inline projection (what a crash between append and projection
leaves behind), and after the read models and their checkpoint are dropped altogether."""

from __future__ import annotations

from typing import Any

import pytest

from mmgen.consent.adapters.mongo import READ_MODEL_COLLECTIONS
from mmgen.consent.adapters.projection import PROJECTION_NAME
from mmgen.consent.domain.events import ConsentEvidence
from mmgen.consent.domain.model import SubjectConsents, consent_stream
from mmgen.consent.entrypoints.app import build_app
from mmgen.events.envelope import Actor
from mmgen.runtime.testing import erase_command, eventually, publish_command, running_app

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_read_model_catches_up_from_the_event_store(api, app, client, tokens) -> None:
    version = await api.publish_policy()
    subject, me = tokens.headers("client")
    aggregate = SubjectConsents(consent_stream(subject))
    aggregate.decide(
        subject_id=subject,
        purpose="cookies.analytics",
        granted=True,
        policy_version=version,
        method="explicit",
        actor=Actor(id=subject, role="client"),
        evidence=ConsentEvidence(user_agent="UA"),
    )
    # Appended, read model not written by this path: only the projector can show it.
    await app.state.consent.runtime.kernel.repository.save(aggregate)

    async def mine() -> list[tuple[str, bool]]:
        items = (await client.get("/consents/me", headers=me)).json()["items"]
        return [(c["purpose"], c["granted"]) for c in items]

    await eventually(mine, until=lambda items: items == [("cookies.analytics", True)])
    accepted = await client.post("/tracking/events", headers=me, json={"name": "page_view"})
    assert accepted.json()["accepted"] is True


async def _read_models(db: Any) -> dict[str, list[dict[str, Any]]]:
    return {
        name: await db[name].find({}).sort("_id", 1).to_list(None)
        for name in READ_MODEL_COLLECTIONS
    }


async def test_dropped_read_models_come_back_identical(consent_settings, tokens) -> None:
    """Policies, decisions (GPC too), analytics events beyond the per-subject bound, a subject
    erased and one erased with `usage` held: dropped with the checkpoint, rebuilt from the
    store on the next start, equal document for document."""
    settings = consent_settings()
    people = [tokens.headers("client") for _ in range(4)]
    async with running_app(build_app(settings, key_set=tokens.key_set()), drop_database=False) as (
        app,
        client,
    ):
        db = app.state.consent.runtime.db
        _, admin = tokens.headers("admin")
        for version, effective in (
            ("r-1", "2026-01-01T00:00:00Z"),
            ("r-2", "2026-02-01T00:00:00Z"),
        ):
            body = {"version": version, "effective_at": effective, "title": "t", "text": version}
            assert (await client.post("/policies", headers=admin, json=body)).status_code == 201
        for _, me in people:
            for purpose in ("cookies.analytics", "marketing.email"):
                body = {"granted": True, "policy_version": "r-2"}
                response = await client.put(f"/consents/me/{purpose}", headers=me, json=body)
                assert response.status_code == 200
            for i in range(7):  # the test settings keep 5 per subject
                response = await client.post("/tracking/events", headers=me, json={"name": f"e{i}"})
                assert response.json()["accepted"] is True
        await client.get("/consents/me", headers={**people[1][1], "Sec-GPC": "1"})
        erased, usage_held = people[2][0], people[3][0]
        commands = [erase_command(erased), erase_command(usage_held, held=["usage"])]
        await publish_command(settings, *commands)

        async def answered() -> int:
            return await db["events"].count_documents({"event_type": "consent.SubjectErased"})

        await eventually(answered, until=lambda n: n == 2, timeout=30)
        await eventually(
            lambda: db["consents"].count_documents({"subject_id": {"$in": [erased, usage_held]}}),
            until=lambda n: n == 0,
        )

        # Snapshot only once the projector has caught up with every stored event.
        async def caught_up() -> bool:
            state = await db["projection_state"].find_one({"_id": PROJECTION_NAME})
            stored = await db["events"].count_documents({})
            return state is not None and state["checkpoint"] == stored

        await eventually(caught_up, timeout=30)
        before = await _read_models(db)
        assert len(before["tracking_events"]) == 3 * 5  # the erased subject's are gone
        assert len(before["consents"]) == 2 + 3  # the GPC signal added data.sale_sharing
        for name in READ_MODEL_COLLECTIONS:
            await db[name].drop()
        await db["projection_state"].delete_one({"_id": PROJECTION_NAME})

    async with running_app(build_app(settings, key_set=tokens.key_set())) as (app, _):
        db = app.state.consent.runtime.db
        await eventually(lambda: _read_models(db), until=lambda now: now == before, timeout=30)
        state = await db["projection_state"].find_one({"_id": PROJECTION_NAME})
        assert state["checkpoint"] == await db["events"].count_documents({})
