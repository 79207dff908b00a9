"""API tests: the tracking gate (consent, anonymity, GPC), its counters, gpc.json."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from mmgen.consent.adapters.mongo import MongoTrackingReadModel
from mmgen.consent.adapters.read_models import TrackedEvent
from mmgen.runtime.testing import assert_problem

pytestmark = pytest.mark.asyncio(loop_scope="module")

EVENT = {"name": "page_view", "page": "/projects/42", "properties": {"ref": "newsletter"}}


def counter(metrics_text: str, result: str, reason: str) -> float:
    pattern = (
        r'^mmgen_consent_tracking_events_total\{reason="'
        + reason
        + r'",result="'
        + result
        + r'"\} (\S+)$'
    )
    found = re.search(pattern, metrics_text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def counters(client) -> dict[tuple[str, str], float]:
    """The gate's counters now (the module's app counts every test's requests)."""
    text = (await client.get("/metrics")).text
    return {
        (result, reason): counter(text, result, reason)
        for result, reason in (
            ("dropped", "anonymous"),
            ("dropped", "no_consent"),
            ("dropped", "gpc"),
            ("accepted", "consent_granted"),
        )
    }


async def counted_since(client, before: dict[tuple[str, str], float]) -> dict[str, float]:
    after = await counters(client)
    return {reason: after[(result, reason)] - before[(result, reason)] for result, reason in after}


async def test_dropped_without_consent_and_counted(api, client, tokens) -> None:
    subject, me = tokens.headers("client")
    before = await counters(client)
    anonymous = await client.post("/tracking/events", json=EVENT)
    assert anonymous.status_code == 202
    assert anonymous.json() == {"accepted": False, "reason": "anonymous", "event_id": None}
    no_consent = await client.post("/tracking/events", headers=me, json=EVENT)
    assert no_consent.json() == {"accepted": False, "reason": "no_consent", "event_id": None}

    assert await counted_since(client, before) == {
        "anonymous": 1,
        "no_consent": 1,
        "gpc": 0,
        "consent_granted": 0,
    }
    assert await api.events(event_type="consent.TrackingEventAccepted", subject_id=subject) == []
    assert await api.db["tracking_events"].count_documents({"subject_id": subject}) == 0


async def test_accepted_with_consent_and_stored_encrypted(api, client, tokens) -> None:
    version = await api.publish_policy()
    subject, me = tokens.headers("client")
    await api.grant(me, "cookies.analytics", version)
    before = await counters(client)
    accepted = await client.post("/tracking/events", headers=me, json=EVENT)
    assert accepted.status_code == 202
    body = accepted.json()
    assert body["accepted"] is True and body["reason"] == "consent_granted"

    (stored,) = await api.events(event_type="consent.TrackingEventAccepted", subject_id=subject)
    assert stored["_id"] == body["event_id"]
    assert stored["subject_id"] == subject
    assert stored["categories"] == ["usage"]
    assert stored["data"]["name"] == "page_view"
    assert stored["pii"]["owner"] == f"subject:{subject}"
    assert await api.db["tracking_events"].count_documents({"subject_id": subject}) == 1
    assert (await counted_since(client, before))["consent_granted"] == 1

    # Withdrawing is as easy as granting, and the gate follows at once.
    await client.put(
        "/consents/me/cookies.analytics",
        headers=me,
        json={"granted": False, "policy_version": version},
    )
    after = await client.post("/tracking/events", headers=me, json=EVENT)
    assert after.json()["reason"] == "no_consent"


async def test_gpc_drops_and_records_refusal(api, client, tokens) -> None:
    version = await api.publish_policy()
    subject, me = tokens.headers("creator")
    await api.grant(me, "cookies.analytics", version)
    before = await counters(client)
    response = await client.post("/tracking/events", headers={**me, "Sec-GPC": "1"}, json=EVENT)
    assert response.json() == {"accepted": False, "reason": "gpc", "event_id": None}
    withdrawals = await api.events(subject_id=subject, event_type="consent.ConsentWithdrawn")
    assert sorted((w["data"]["purpose"], w["data"]["method"]) for w in withdrawals) == [
        ("cookies.analytics", "gpc"),
        ("data.sale_sharing", "gpc"),
    ]
    # The refusal is durable: without the header the analytics consent stays withdrawn.
    later = await client.post("/tracking/events", headers=me, json=EVENT)
    assert later.json()["reason"] == "no_consent"
    assert (await counted_since(client, before))["gpc"] == 1
    # Anonymous GPC callers have nothing to record: dropped, no event.
    mark = await api.mark()
    await client.post("/tracking/events", headers={"Sec-GPC": "1"}, json=EVENT)
    assert await api.events(after=mark) == []


async def test_tracking_input_limits(api, client, tokens) -> None:
    version = await api.publish_policy()
    _, me = tokens.headers("client")
    await api.grant(me, "cookies.analytics", version)
    mark = await api.mark()
    for body in (
        {"name": "Page View!"},
        {"name": "x", "properties": {"blob": "y" * 5000}},
        {"name": "x", "page": "/" * 3000},
        {"name": "x", "unknown": 1},
        {"properties": {}},
    ):
        response = await client.post("/tracking/events", headers=me, json=body)
        assert_problem(response, 422)
    assert await api.events(after=mark) == []


async def test_stored_tracking_events_are_bounded_per_subject(api, client, tokens) -> None:
    version = await api.publish_policy()
    subject, me = tokens.headers("client")
    await api.grant(me, "cookies.analytics", version)
    ids = []
    for i in range(7):  # the test settings keep 5 per subject
        response = await client.post("/tracking/events", headers=me, json={"name": f"e{i}"})
        ids.append(response.json()["event_id"])
    kept = await api.db["tracking_events"].find({"subject_id": subject}).to_list(None)
    assert sorted(d["_id"] for d in kept) == sorted(ids[2:])


async def test_concurrent_trims_never_cut_below_the_bound(api) -> None:
    """The inline write and the projector trim the same subject at once; newer events arrive
    between one trim's read and its delete. The bound holds and the newest survive."""
    model = MongoTrackingReadModel(api.db)
    subject = str(uuid.uuid4())
    start = datetime(2026, 1, 1, tzinfo=UTC)
    events = [
        TrackedEvent(str(uuid.uuid4()), subject, f"e{i}", start + timedelta(seconds=i))
        for i in range(40)
    ]
    for event in events[:5]:
        await model.add(event)

    async def add_then_trim(event: TrackedEvent) -> None:
        await model.add(event)
        await model.trim(subject, 5)

    await asyncio.gather(*(add_then_trim(event) for event in events[5:]))
    await model.trim(subject, 5)
    kept = await model.of_subject(subject, limit=100)
    assert [e.event_id for e in kept] == [e.event_id for e in events[-5:]]


async def test_gpc_support_resource(client) -> None:
    response = await client.get("/.well-known/gpc.json")
    assert response.status_code == 200
    body = response.json()
    assert body["gpc"] is True
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", body["lastUpdate"])
