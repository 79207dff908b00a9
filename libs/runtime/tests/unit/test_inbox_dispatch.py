"""The inbox's dispatch: every handler registered for an event type runs, in order."""

from __future__ import annotations

from typing import Any

import pytest

from mmgen.events.envelope import Envelope
from mmgen.events.kernel import in_memory_kernel
from mmgen.events.registry import EventRegistry
from mmgen.runtime.service import ServiceRuntime
from mmgen.runtime.settings import EventServiceSettings
from mmgen.runtime.testing import erase_command


def _runtime() -> ServiceRuntime:
    registry = EventRegistry()
    kernel = in_memory_kernel(producer="svc", registry=registry)
    settings = EventServiceSettings(service_name="svc", environment="test")
    return ServiceRuntime(settings, registry, kernel=kernel)


async def test_every_handler_of_an_event_type_runs_in_registration_order() -> None:
    runtime = _runtime()
    seen: list[tuple[str, str]] = []

    async def first(envelope: Envelope, ctx: Any) -> None:
        seen.append(("first", envelope.event_type))

    async def second(envelope: Envelope, ctx: Any) -> None:
        seen.append(("second", envelope.event_type))

    runtime.on("identity.AccountClosed", first)
    runtime.on("identity.AccountClosed", second)
    closed = erase_command("7a1c0c1e-8d0e-4a4b-9d55-0a4f6f7c9a10").model_copy(
        update={"event_type": "identity.AccountClosed", "producer": "identity"}
    )
    await runtime.dispatch(closed, None)  # type: ignore[arg-type]
    await runtime.dispatch(erase_command("7a1c0c1e-8d0e-4a4b-9d55-0a4f6f7c9a10"), None)  # type: ignore[arg-type]

    assert seen == [("first", "identity.AccountClosed"), ("second", "identity.AccountClosed")]
    assert runtime.consumed_topics() == [runtime.topics.events("identity")]


async def test_one_handler_registered_twice_for_a_type_is_refused() -> None:
    runtime = _runtime()

    async def handler(envelope: Envelope, ctx: Any) -> None:
        return None

    runtime.on("identity.UserRegistered", handler)
    with pytest.raises(ValueError, match="has this handler already"):
        runtime.on("identity.UserRegistered", handler)
