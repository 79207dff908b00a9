"""API test: a closed account's token stops working once identity's event is consumed."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from mmgen.events.envelope import Envelope, Resource
from mmgen.events.kafka_testing import wait_until


async def test_closed_account_token_is_refused(api, client, tokens, kafka_bootstrap, topic_prefix):
    subject, me = tokens.headers("client")
    _, other = tokens.headers("client")
    assert (await client.get("/consents/me", headers=me)).status_code == 200

    closed = Envelope(
        event_type="identity.AccountClosed",
        schema_version=1,
        producer="identity",
        stream_id=f"user:{subject}",
        stream_version=3,
        subject_id=subject,
        action="delete",
        resource=Resource(type="user", id=subject),
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            f"{topic_prefix}identity.events", closed.to_wire(), key=closed.kafka_key()
        )
    finally:
        await producer.stop()

    async def refused() -> bool:
        return (await client.get("/consents/me", headers=me)).status_code == 401

    await wait_until(refused, timeout_s=30, what="the closed account's token to be refused")
    assert (await client.get("/consents/me", headers=other)).status_code == 200
    denials = await api.events(event_type="consent.AccessDenied")
    assert denials and denials[-1]["data"]["status"] == 401
