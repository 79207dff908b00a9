"""A small service on the runtime, against the session's real broker and database.

It checks what every service gets for free: projections caught up from the store (also after
a restart with the read model dropped), retention's commands obeyed once with the contract's
answer, exports audited with the caller, refusals recorded, the key cache evicted on
`SubjectErased`, readiness, and its topics created with the platform's partition count.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient

from mmgen.events.envelope import Envelope
from mmgen.events.mapper import NewEvent
from mmgen.events.registry import EventData, EventRegistry, PersonalData
from mmgen.events.topics import ensure_topics
from mmgen.platform.auth import issue_token
from mmgen.runtime.app import build_service_app
from mmgen.runtime.contract import Footprint, SubjectExport
from mmgen.runtime.erasure import (
    AnonymizationOutcome,
    AnonymizeOrder,
    EraseOrder,
    ErasureOutcome,
    answer_id,
)
from mmgen.runtime.service import ServiceRuntime
from mmgen.runtime.settings import EventServiceSettings
from mmgen.runtime.testing import (
    Tokens,
    assert_problem,
    erase_command,
    eventually,
    publish_command,
    running_app,
    service_settings,
)


class NoteSettings(EventServiceSettings):
    service_name: str = "notes"
    mongo_database: str = "notes"


class NoteText(PersonalData):
    text: str


def note_registry() -> EventRegistry:
    registry = EventRegistry()

    @registry.event(
        "notes.NoteWritten", action="create", resource_type="note", categories=["communication"]
    )
    class NoteWritten(EventData):
        note_id: str
        personal: ClassVar = NoteText

    return registry


class Notes:
    """The service under test: a read model of notes, a participant of the erasure contract."""

    def __init__(self, runtime: ServiceRuntime) -> None:
        self.runtime = runtime
        assert runtime.db is not None
        self.rows = runtime.db["notes"]
        runtime.projection("notes", self.apply, reset=self.reset)
        runtime.erasure(self)
        self.written = runtime.registry.spec("notes.NoteWritten").data_model

    async def write(self, subject_id: str, text: str) -> str:
        note_id = str(uuid.uuid4())
        await self.runtime.kernel.repository.append(
            f"note-{note_id}",
            0,
            [
                NewEvent(
                    self.written(note_id=note_id),
                    personal=NoteText(text=text),
                    subject_id=subject_id,
                )
            ],
        )
        return note_id

    async def apply(self, envelope: Envelope) -> None:
        if envelope.event_type == "notes.NoteWritten":
            await self.rows.update_one(
                {"_id": envelope.data["note_id"]},
                {"$setOnInsert": {"subject_id": envelope.subject_id}},
                upsert=True,
            )

    async def reset(self) -> None:
        await self.rows.delete_many({})

    async def erase_subject(self, order: EraseOrder) -> ErasureOutcome:
        deleted = await self.rows.delete_many(
            {"subject_id": order.subject_id}, session=order.session
        )
        shredded = await self.runtime.kernel.shred(f"subject:{order.subject_id}")
        return ErasureOutcome(
            keys_shredded=int(shredded), records_deleted={"communication": deleted.deleted_count}
        )

    async def anonymize_resource(self, order: AnonymizeOrder) -> AnonymizationOutcome:
        return AnonymizationOutcome()

    async def export(self, subject_id: str) -> SubjectExport:
        rows = [doc async for doc in self.rows.find({"subject_id": subject_id})]
        return SubjectExport(
            service="notes",
            subject_id=subject_id,
            generated_at=datetime.now(UTC),
            erased=await self.runtime.kernel.keystore.is_erased(f"subject:{subject_id}"),
            records={"notes": [row["_id"] for row in rows]},
        )

    async def footprint(self, subject_id: str) -> Footprint:
        count = await self.rows.count_documents({"subject_id": subject_id})
        return Footprint.of(
            "notes", subject_id, key_erased=False, records={"communication": count}, readable={}
        )


@pytest.fixture(scope="module")
def tokens() -> Tokens:
    return Tokens.generate(audience="notes")


@pytest.fixture(scope="module")
def settings(infra: Any) -> NoteSettings:
    return service_settings(NoteSettings, infra)


def make_app(settings: NoteSettings, tokens: Tokens) -> Any:
    runtime = ServiceRuntime(settings, note_registry())
    notes = Notes(runtime)
    app = build_service_app(
        runtime, title="notes", version="0", description="test", key_set=tokens.key_set()
    )
    app.state.notes = notes
    return app


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(settings: NoteSettings, tokens: Tokens) -> AsyncIterator[Any]:
    async with running_app(make_app(settings, tokens), drop_database=False) as (app, client):
        yield app, client


async def _stored(app: Any, **query: Any) -> list[dict[str, Any]]:
    runtime: ServiceRuntime = app.state.runtime
    assert runtime.db is not None
    return [doc async for doc in runtime.db["events"].find(query)]


@pytest.mark.asyncio(loop_scope="module")
async def test_projection_follows_appends_and_readiness_reports_it(running: Any) -> None:
    app, client = running
    subject = str(uuid.uuid4())
    note_id = await app.state.notes.write(subject, "hello")
    await eventually(lambda: app.state.notes.rows.find_one({"_id": note_id}))
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    names = set(ready.json()["checks"])
    assert {"database", "broker", "relay", "inbox", "projections"} <= names


@pytest.mark.asyncio(loop_scope="module")
async def test_erase_command_is_obeyed_once_with_the_contract_answer(
    running: Any, settings: NoteSettings
) -> None:
    app, _ = running
    subject = str(uuid.uuid4())
    await app.state.notes.write(subject, "to be erased")
    await eventually(lambda: app.state.notes.rows.find_one({"subject_id": subject}))
    command = erase_command(subject)
    await publish_command(settings, command, command)  # delivered twice

    answers = await eventually(
        lambda: _stored(app, event_type="notes.SubjectErased", subject_id=subject)
    )
    assert [a["_id"] for a in answers] == [answer_id(command, "notes")]
    assert answers[0]["data"]["records_deleted"] == {"communication": 1}
    assert answers[0]["data"]["keys_shredded"] == 1
    assert await app.state.notes.rows.count_documents({"subject_id": subject}) == 0


@pytest.mark.asyncio(loop_scope="module")
async def test_key_cache_is_evicted_when_subject_erased_is_stored(running: Any) -> None:
    app, _ = running
    runtime: ServiceRuntime = app.state.runtime
    subject = str(uuid.uuid4())
    owner = f"subject:{subject}"
    await app.state.notes.write(subject, "cached")
    keystore: Any = runtime.kernel.keystore
    assert owner in keystore.cache  # the write cached the key
    # Another replica erases: it shreds in the shared keystore and stores its answer; this
    # process never called shred, so only the watcher can evict its cached key.
    await runtime.kernel.keystore.__class__(runtime.db, runtime.settings.master_keyring()).shred(
        owner
    )
    await runtime.kernel.repository.append(
        f"erasure:{uuid.uuid4()}",
        0,
        [
            NewEvent(
                runtime.events.SubjectErased(subject_id=subject, keys_shredded=1),
                subject_id=subject,
            )
        ],
    )
    await eventually(lambda: _async(owner not in keystore.cache))


async def _async(value: bool) -> bool:
    return value


@pytest.mark.asyncio(loop_scope="module")
async def test_export_is_audited_with_the_service_caller(running: Any, tokens: Tokens) -> None:
    app, client = running
    subject = str(uuid.uuid4())
    note_id = await app.state.notes.write(subject, "mine")
    await eventually(lambda: app.state.notes.rows.find_one({"_id": note_id}))
    token = issue_token(tokens.key, subject="retention", role="service", audience="notes")
    response = await client.get(
        f"/internal/subjects/{subject}/export",
        headers={"Authorization": f"Bearer {token}", "X-Purpose": "legal_compliance"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["records"]["notes"] == [note_id]
    [audit] = await _stored(app, event_type="notes.SubjectExported", subject_id=subject)
    assert audit["actor"] == {"id": "retention", "role": "service"}
    assert audit["purpose"] == "legal_compliance"

    _, client_headers = tokens.headers("client", subject)
    refused = await client.get(f"/internal/subjects/{subject}/export", headers=client_headers)
    assert_problem(refused, 403)
    [denied] = await _stored(app, event_type="notes.AccessDenied", subject_id=subject)
    assert denied["data"]["route"] == "/internal/subjects/{subject_id}/export"


@pytest.mark.asyncio(loop_scope="module")
async def test_a_raw_path_value_never_becomes_a_subject(running: Any, tokens: Tokens) -> None:
    app, client = running
    raw = "x" * 300
    refused = await client.get(f"/internal/subjects/{raw}/footprint")
    assert_problem(refused, 401)
    denials = await _stored(app, event_type="notes.AccessDenied")
    assert all(d.get("subject_id") in (None,) or len(d["subject_id"]) == 36 for d in denials)
    assert not any(raw in str(d) for d in denials)


async def test_topics_are_created_with_the_platform_count(infra: Any, tokens: Tokens) -> None:
    settings = service_settings(NoteSettings, infra, topic_partitions=6)
    runtime = ServiceRuntime(settings, note_registry())
    Notes(runtime)
    counts = await ensure_topics(settings.kafka_bootstrap, [], partitions=settings.topic_partitions)
    assert counts == {}
    async with runtime.lifespan():
        counts = await ensure_topics(
            settings.kafka_bootstrap,
            runtime.owned_topics(),
            partitions=6,
        )
    assert set(counts.values()) == {6}
    assert settings.topic("retention.commands") in counts
    assert settings.topic("notes.events.dlq") in counts


async def test_read_model_dropped_is_rebuilt_from_the_store(infra: Any, tokens: Tokens) -> None:
    settings = service_settings(NoteSettings, infra)
    subject = str(uuid.uuid4())
    async with running_app(make_app(settings, tokens), drop_database=False) as (app, _):
        ids = [await app.state.notes.write(subject, f"n{i}") for i in range(5)]
        await eventually(
            lambda: app.state.notes.rows.count_documents({"subject_id": subject}),
            until=lambda n: n == 5,
        )
        before = sorted([d async for d in app.state.notes.rows.find({})], key=lambda d: d["_id"])
    mongo: Any = AsyncMongoClient(settings.mongo_uri)
    try:
        db = mongo[settings.mongo_database]
        await db["notes"].drop()
        await db["projection_state"].delete_many({})
    finally:
        await mongo.close()
    async with running_app(make_app(settings, tokens)) as (app, _):
        await eventually(
            lambda: app.state.notes.rows.count_documents({}), until=lambda n: n == len(before)
        )
        after = sorted([d async for d in app.state.notes.rows.find({})], key=lambda d: d["_id"])
    assert after == before
    assert {d["_id"] for d in after} >= set(ids)


async def test_master_key_rotation_rewraps_every_data_key(infra: Any, tokens: Tokens) -> None:
    """Written under mk-1; restarted with mk-2 (mk-1 retired); rewrap; restarted with mk-2 alone."""
    import base64
    import secrets

    from pydantic import SecretStr

    def key() -> str:
        return base64.b64encode(secrets.token_bytes(32)).decode()

    old, new = key(), key()
    base = service_settings(NoteSettings, infra, master_key=SecretStr(old), master_key_id="mk-1")
    subject = str(uuid.uuid4())
    async with running_app(make_app(base, tokens), drop_database=False) as (app, _):
        note_id = await app.state.notes.write(subject, "written under mk-1")

    rotating = base.model_copy(
        update={
            "master_key": SecretStr(new),
            "master_key_id": "mk-2",
            "master_keys_retired": {"mk-1": SecretStr(old)},
        }
    )
    cli_token = issue_token(tokens.key, subject="admin-cli", role="service", audience="notes")
    admin = {"Authorization": f"Bearer {cli_token}"}
    async with running_app(make_app(rotating, tokens), drop_database=False) as (app, client):
        response = await client.post("/internal/keys/rewrap", headers=admin)
        assert response.status_code == 200, response.text
        assert response.json() == {"rewrapped": 1, "master_key_id": "mk-2"}
        again = await client.post("/internal/keys/rewrap", headers=admin)
        assert again.json()["rewrapped"] == 0  # resumable: nothing left under mk-1
        refused = await client.post("/internal/keys/rewrap", headers=tokens.headers("admin")[1])
        assert_problem(refused, 403)

    only_new = rotating.model_copy(update={"master_keys_retired": {}})
    async with running_app(make_app(only_new, tokens)) as (app, _):
        runtime: ServiceRuntime = app.state.runtime
        [event] = await runtime.kernel.repository.load(f"note-{note_id}")
        assert event.personal.text == "written under mk-1"


@pytest.mark.asyncio(loop_scope="module")
async def test_the_relay_head_is_announced(running: Any, settings: NoteSettings) -> None:
    from aiokafka import AIOKafkaConsumer

    from mmgen.events.heads import HeadAnnouncement, heads_topic

    app, _ = running
    subject = str(uuid.uuid4())
    await app.state.notes.write(subject, "head")
    runtime: ServiceRuntime = app.state.runtime
    last = await runtime.kernel.store.last_seq()
    consumer = AIOKafkaConsumer(
        heads_topic(settings.topic_prefix),
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        seen: list[HeadAnnouncement] = []

        async def announced() -> bool:
            batches = await consumer.getmany(timeout_ms=200)
            seen.extend(HeadAnnouncement.from_wire(r.value) for b in batches.values() for r in b)
            return any(h.producer == "notes" and h.last_seq >= last for h in seen)

        await eventually(announced)
    finally:
        await consumer.stop()
