"""Registered events appear in the AsyncAPI document of the service that publishes them."""

from __future__ import annotations

from typing import ClassVar

from faststream.kafka import KafkaBroker

from mmgen.events.asyncapi import asyncapi_document, declare_event_publishers, events_asyncapi
from mmgen.events.registry import EventData, EventRegistry, PersonalData

registry = EventRegistry()


class UserRegisteredPII(PersonalData):
    name: str
    email: str


@registry.event(
    "identity.UserRegistered",
    version=2,
    action="create",
    resource_type="user",
    categories=["contact"],
)
class UserRegistered(EventData):
    user_id: str
    role: str
    personal: ClassVar = UserRegisteredPII


@registry.event("identity.UserClosed", action="delete", resource_type="user")
class UserClosed(EventData):
    user_id: str


@registry.event("projects.ProjectOpened", action="create", resource_type="project")
class ProjectOpened(EventData):
    project_id: str


def test_every_event_type_of_the_service_is_documented_with_its_payload() -> None:
    doc = events_asyncapi(registry, "identity.events", service="identity")
    assert doc["asyncapi"] == "3.0.0"
    channels = doc["channels"]
    assert set(channels) == {
        "identity.events:identity.UserRegistered",
        "identity.events:identity.UserClosed",
    }
    assert all(c["address"] == "identity.events" for c in channels.values())
    assert {op["action"] for op in doc["operations"].values()} == {"send"}

    schemas = doc["components"]["schemas"]
    registered = schemas["identity.UserRegistered.v2"]
    props = registered["properties"]
    assert props["event_type"]["const"] == "identity.UserRegistered"
    assert props["schema_version"]["const"] == 2
    data = props["data"]
    data_schema = schemas[data["$ref"].rsplit("/", 1)[1]] if "$ref" in data else data
    assert set(data_schema["properties"]) == {"user_id", "role"}  # public fields only
    assert props["pii"]["x-personal-fields"] == ["name", "email"]
    assert "name" not in data_schema["properties"]
    assert "ProjectOpened" not in str(doc)  # another service's event is not ours


def test_publishers_join_a_service_broker_with_its_subscribers() -> None:
    broker = KafkaBroker("localhost:9092")

    @broker.subscriber("retention.commands", group_id="identity")
    async def on_command(body: dict[str, object]) -> None:
        """Erasure commands."""

    declare_event_publishers(broker, registry, "identity.events", service="identity")
    doc = asyncapi_document(broker, title="identity")
    actions = sorted(op["action"] for op in doc["operations"].values())
    assert actions == ["receive", "send", "send"]
