"""The inbox reads retention's commands apart from other services' events, on the real broker.

An erasure can take long; while one is under way, the events that arrive meanwhile — in
retention, the services' `SubjectErased` reports — are handled, not queued behind it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio

from mmgen.events.consumer import HandlerContext
from mmgen.events.envelope import Envelope
from mmgen.events.mapper import NewEvent
from mmgen.events.registry import EventData, EventRegistry
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
    erase_command,
    eventually,
    publish,
    publish_command,
    running_app,
    service_settings,
)


class SlowSettings(EventServiceSettings):
    service_name: str = "slowerase"
    mongo_database: str = "slowerase"


def slow_registry() -> EventRegistry:
    registry = EventRegistry()

    @registry.event("slowerase.Ticked", action="update", resource_type="clock", categories=[])
    class Ticked(EventData):
        n: int

    return registry


class SlowErasure:
    """A participant whose erasure waits until the test lets it finish, then takes `delay_s`
    (its own writes, outside the consumer's transaction)."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.delay_s = 0.0

    async def erase_subject(self, order: EraseOrder) -> ErasureOutcome:
        self.started.set()
        await self.release.wait()
        await asyncio.sleep(self.delay_s)
        return ErasureOutcome()

    async def anonymize_resource(self, order: AnonymizeOrder) -> AnonymizationOutcome:
        return AnonymizationOutcome()

    async def export(self, subject_id: str) -> SubjectExport:
        return SubjectExport(
            service="slowerase", subject_id=subject_id, generated_at=datetime.now(UTC)
        )

    async def footprint(self, subject_id: str) -> Footprint:
        return Footprint.of("slowerase", subject_id, key_erased=False, records={}, readable={})


class Reports:
    """An inbox handler of another service's events: notes the ids it handled."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def handle(self, envelope: Envelope, ctx: HandlerContext) -> None:
        self.seen.append(envelope.event_id)


@pytest.fixture(scope="module")
def settings(infra: Any) -> SlowSettings:
    return service_settings(SlowSettings, infra)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(settings: SlowSettings) -> AsyncIterator[Any]:
    runtime = ServiceRuntime(settings, slow_registry())
    participant, reports = SlowErasure(), Reports()
    runtime.erasure(participant)
    runtime.on("other.SubjectErased", reports.handle)
    tokens = Tokens.generate(audience="slowerase")
    app = build_service_app(
        runtime, title="slowerase", version="0", description="test", key_set=tokens.key_set()
    )
    async with running_app(app, drop_database=False) as (app, _):
        yield runtime, participant, reports


def test_commands_and_events_are_read_by_separate_subscriptions(infra: Any) -> None:
    settings = service_settings(SlowSettings, infra)
    runtime = ServiceRuntime(settings, EventRegistry())
    runtime.erasure(SlowErasure())
    runtime.on("other.SubjectErased", Reports().handle)
    assert runtime.inbox_subscriptions() == [
        ([runtime.topics.retention_commands], settings.commands_group, "slowerase-commands"),
        ([runtime.topics.events("other")], settings.inbox_group, "slowerase-inbox"),
    ]
    assert settings.commands_group != settings.inbox_group


def test_a_command_is_obeyed_from_the_commands_topic_only(infra: Any) -> None:
    """Retention reads its own events topic (for its own `SubjectErased`), which carries each
    command too: the events subscription leaves the command to the commands subscription."""
    settings = service_settings(SlowSettings, infra)
    runtime = ServiceRuntime(settings, EventRegistry())
    runtime.erasure(SlowErasure())
    runtime.on("retention.SubjectErased", Reports().handle)
    (commands, _, _), (events, _, _) = runtime.inbox_subscriptions()
    assert commands == [runtime.topics.retention_commands]
    assert runtime.topics.events("retention") in events
    from_commands = runtime.inbox_accepts(commands=True)
    from_events = runtime.inbox_accepts(commands=False)
    assert from_commands("retention.EraseSubject") and from_commands("retention.AnonymizeResource")
    assert not from_commands("retention.SubjectErased")
    assert from_events("retention.SubjectErased")
    assert not from_events("retention.EraseSubject")
    assert not from_events("retention.AnonymizeResource")
    assert not from_events("retention.ErasureOrdered")  # read, not handled


@pytest.mark.asyncio(loop_scope="module")
async def test_an_erasure_under_way_does_not_hold_up_other_events(
    running: Any, settings: SlowSettings
) -> None:
    runtime, participant, reports = running
    command = erase_command(str(uuid.uuid4()))
    await publish_command(settings, command)
    await asyncio.wait_for(participant.started.wait(), timeout=30)

    report = erase_command(str(uuid.uuid4())).model_copy(
        update={
            "event_id": str(uuid.uuid4()),
            "event_type": "other.SubjectErased",
            "producer": "other",
        }
    )
    await publish(settings.kafka_bootstrap, settings.topic("other.events"), report)
    try:
        # Handled while the erasure still waits: one subscription would queue it behind.
        await eventually(_async, until=lambda _: report.event_id in reports.seen, timeout=30)
        assert not participant.release.is_set()
    finally:
        participant.release.set()

    async def answered() -> Any:
        return await runtime.db["events"].find_one({"_id": answer_id(command, "slowerase")})

    await eventually(answered, timeout=30)


async def _async() -> bool:
    return True


@pytest.mark.asyncio(loop_scope="module")
async def test_an_erasure_is_answered_while_the_service_keeps_appending(
    running: Any, settings: SlowSettings
) -> None:
    """The service appends every 50 ms (in retention: every audited read of a request) while
    the participant takes 300 ms: the answer still comes, not once the appends stop."""
    runtime, participant, _ = running
    participant.release.set()
    participant.delay_s = 0.3
    ticked = runtime.registry.spec("slowerase.Ticked").data_model
    stop = asyncio.Event()

    async def tick() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            await runtime.kernel.repository.append(
                f"tick-{uuid.uuid4()}", 0, [NewEvent(ticked(n=n))]
            )
            await asyncio.sleep(0.05)

    ticker = asyncio.create_task(tick())
    command = erase_command(str(uuid.uuid4()))
    try:
        await publish_command(settings, command)

        async def answered() -> Any:
            return await runtime.db["events"].find_one({"_id": answer_id(command, "slowerase")})

        await eventually(answered, timeout=20)
    finally:
        stop.set()
        await ticker
