"""API test: a closed account's token stops working once identity's event is consumed."""

from __future__ import annotations

import pytest

from mmgen.events.envelope import Envelope, Resource
from mmgen.runtime.testing import assert_problem, eventually, publish

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_closed_account_token_is_refused(api, client, tokens, settings) -> None:
    subject, me = tokens.headers("client")
    _, other = tokens.headers("client")
    assert (await client.get("/consents/me", headers=me)).status_code == 200

    closed = Envelope(
        event_type="identity.AccountClosed",
        schema_version=1,
        producer="identity",
        producer_seq=1,
        stream_id=f"user:{subject}",
        stream_version=3,
        subject_id=subject,
        action="delete",
        resource=Resource(type="user", id=subject),
    )
    await publish(settings.kafka_bootstrap, settings.topic("identity.events"), closed)

    async def status() -> int:
        return (await client.get("/consents/me", headers=me)).status_code

    await eventually(status, until=lambda code: code == 401, timeout=30)
    mark = await api.mark()
    assert_problem(await client.get("/consents/me", headers=me), 401)
    (denial,) = await api.events(after=mark, event_type="consent.AccessDenied")
    assert denial["data"]["status"] == 401
    assert (await client.get("/consents/me", headers=other)).status_code == 200
