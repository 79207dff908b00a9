"""The test infrastructure is real: consumer groups and multi-document transactions.

Each check runs against the session's local broker and database (what `mmgen up` starts) and
against real Apache Kafka and MongoDB through testcontainers, which is skipped with its reason
where no Docker engine answers.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pymongo import AsyncMongoClient

from mmgen.localstack.containers import ContainerInfra, docker_available, start_containers
from mmgen.localstack.pytest_plugin import Infra


@pytest.fixture(scope="module")
def containers() -> Iterator[ContainerInfra]:
    ok, why = docker_available()
    if not ok:
        pytest.skip(why)
    started = start_containers()
    try:
        yield started
    finally:
        started.close()


@pytest.fixture(params=["local", pytest.param("containers", marks=pytest.mark.containers)])
def backend(request: pytest.FixtureRequest) -> Infra:
    if request.param == "containers":
        real: ContainerInfra = request.getfixturevalue("containers")
        return Infra(real.kafka_bootstrap, real.mongo_uri, "containers")
    session: Infra = request.getfixturevalue("infra")
    return session


async def test_produce_and_consume_in_a_consumer_group(backend: Infra, topic_prefix: str) -> None:
    await check_consumer_group(backend.kafka_bootstrap, topic_prefix)


async def test_multi_document_transaction_commits_and_aborts(backend: Infra) -> None:
    client: AsyncMongoClient = AsyncMongoClient(backend.mongo_uri)
    name = f"t_{uuid.uuid4().hex[:12]}"
    try:
        await check_transactions(client, client[name])
    finally:
        await client.drop_database(name)
        await client.close()


async def check_consumer_group(kafka_bootstrap: str, topic_prefix: str) -> None:
    topic = f"{topic_prefix}probe"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    finally:
        await admin.close()
    sent = {uuid.uuid4().hex.encode() for _ in range(30)}
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await asyncio.gather(
            *[producer.send_and_wait(topic, value, key=value[:4]) for value in sent]
        )
    finally:
        await producer.stop()

    group = f"{topic_prefix}group"
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=2000,
        heartbeat_interval_ms=500,
    )
    await consumer.start()
    received: set[bytes] = set()
    try:
        async with asyncio.timeout(30):
            while received != sent:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    received.update(record.value for record in records)
            await consumer.commit()
        committed = {tp: await consumer.committed(tp) for tp in consumer.assignment()}
    finally:
        await consumer.stop()
    assert received == sent
    assert sum(offset or 0 for offset in committed.values()) == len(sent)


async def check_transactions(mongo_client, mongo_db) -> None:
    accounts = mongo_db["accounts"]
    await accounts.insert_many([{"_id": "a", "balance": 10}, {"_id": "b", "balance": 0}])

    async def transfer(session, amount: int) -> None:
        await accounts.update_one({"_id": "a"}, {"$inc": {"balance": -amount}}, session=session)
        await accounts.update_one({"_id": "b"}, {"$inc": {"balance": amount}}, session=session)
        if amount > 10:
            raise ValueError("overdraft")

    async with mongo_client.start_session() as session:
        await session.with_transaction(lambda s: transfer(s, 4))
    balances = {doc["_id"]: doc["balance"] async for doc in accounts.find()}
    assert balances == {"a": 6, "b": 4}

    async with mongo_client.start_session() as session:
        with pytest.raises(ValueError, match="overdraft"):
            await session.with_transaction(lambda s: transfer(s, 50))
    balances = {doc["_id"]: doc["balance"] async for doc in accounts.find()}
    assert balances == {"a": 6, "b": 4}, "an aborted transaction must leave nothing behind"
