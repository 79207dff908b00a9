"""API test: read models catch up with events appended without their inline projection
(what a crash between append and projection leaves behind)."""

from __future__ import annotations

from mmgen.consent.domain.events import ConsentEvidence
from mmgen.consent.domain.model import SubjectConsents, consent_stream
from mmgen.events.envelope import Actor
from mmgen.events.kafka_testing import wait_until


async def test_read_model_catches_up_from_the_event_store(api, app, client, tokens) -> None:
    await api.publish_policy("v1")
    subject, me = tokens.headers("client")
    container = app.state.consent
    aggregate = SubjectConsents(consent_stream(subject))
    aggregate.decide(
        subject_id=subject,
        purpose="cookies.analytics",
        granted=True,
        policy_version="v1",
        method="explicit",
        actor=Actor(id=subject, role="client"),
        evidence=ConsentEvidence(user_agent="UA"),
    )
    await container.repo.save(aggregate)  # appended, read model not written by this path

    async def visible() -> bool:
        items = (await client.get("/consents/me", headers=me)).json()["items"]
        return [(c["purpose"], c["granted"]) for c in items] == [("cookies.analytics", True)]

    await wait_until(visible, timeout_s=20, what="the projector to catch up")
    # The policy read model rebuilds too: drop it and replay from the start.
    await api.db["policies"].delete_many({})
    await container.projector.stop()
    container.projector.checkpoint = 0
    applied = await container.projector.project_next()
    assert applied >= 2
    assert (await client.get("/policies/current")).json()["version"] == "v1"
    accepted = await client.post("/tracking/events", headers=me, json={"name": "page_view"})
    assert accepted.json()["accepted"] is True
