"""`ServiceRuntime.commands`: a service's command events reach its events topic and its
commands topic, once each, in order, against the session's real broker and database."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from mmgen.events.envelope import Envelope
from mmgen.events.kafka_testing import read_all
from mmgen.events.mapper import NewEvent
from mmgen.events.registry import EventData, EventRegistry
from mmgen.runtime.service import ServiceRuntime
from mmgen.runtime.settings import EventServiceSettings
from mmgen.runtime.testing import eventually, service_settings


class OrdersSettings(EventServiceSettings):
    service_name: str = "orders"
    mongo_database: str = "orders"


class OrderGiven(EventData):
    order_id: str


class NoteWritten(EventData):
    note_id: str


def orders_registry() -> EventRegistry:
    registry = EventRegistry()
    registry.event("orders.OrderGiven", action="erase", resource_type="subject")(OrderGiven)
    registry.event("orders.NoteWritten", action="create", resource_type="note")(NoteWritten)
    return registry


def test_commands_must_be_the_services_own_registered_events(infra: Any) -> None:
    runtime = ServiceRuntime(service_settings(OrdersSettings, infra), orders_registry())
    with pytest.raises(ValueError, match="own registered"):
        runtime.commands({"identity.UserRegistered"}, "orders.commands")
    with pytest.raises(ValueError, match="own registered"):
        runtime.commands({"orders.Unknown"}, "orders.commands")
    with pytest.raises(ValueError, match="events topic"):
        runtime.commands({"orders.OrderGiven"}, "orders.events")
    copy = runtime.commands({"orders.OrderGiven"}, "orders.commands")
    assert copy.topic in runtime.owned_topics()


async def test_a_command_appended_once_appears_once_on_each_topic_in_order(infra: Any) -> None:
    settings = service_settings(OrdersSettings, infra)
    runtime = ServiceRuntime(settings, orders_registry())
    runtime.commands({"orders.OrderGiven"}, "orders.commands")
    subject = str(uuid.uuid4())  # one key: one partition, so the order is observable
    kinds = ["order", "note", "order", "order", "note", "order"]
    async with runtime.lifespan():
        stored = []
        for kind in kinds:
            data: EventData = (
                OrderGiven(order_id=str(uuid.uuid4()))
                if kind == "order"
                else NoteWritten(note_id=str(uuid.uuid4()))
            )
            [event] = await runtime.repository.append(
                f"{kind}-{uuid.uuid4()}", 0, [NewEvent(data, subject_id=subject)]
            )
            stored.append(event.envelope)
        relay = runtime.relay
        assert relay is not None
        await eventually(lambda: _value(relay.status.checkpoint), until=lambda n: n == len(kinds))

    # One more than expected, briefly: a duplicate would show up (both were acked already).
    on_events = await read_all(
        settings.kafka_bootstrap, runtime.events_topic, expect=len(kinds) + 1, timeout_s=2
    )
    assert [json.loads(r.value)["producer_seq"] for r in on_events] == list(range(1, 7))
    orders = [e for e in stored if e.event_type == "orders.OrderGiven"]
    commands_topic = settings.topic("orders.commands")
    on_commands = await read_all(
        settings.kafka_bootstrap, commands_topic, expect=len(orders) + 1, timeout_s=2
    )
    assert [Envelope.from_wire(r.value) for r in on_commands] == orders
    assert [e.producer_seq for e in orders] == [1, 3, 4, 6]


async def _value(value: int) -> int:
    return value
