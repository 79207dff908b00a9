"""The runtime's inbox dispatch: handlers by event type, several per type in order."""

from __future__ import annotations

from typing import Any

import pytest

from mmgen.events.kernel import in_memory_kernel
from mmgen.events.registry import EventRegistry
from mmgen.runtime.service import ServiceRuntime
from mmgen.runtime.settings import EventServiceSettings
from mmgen.runtime.testing import erase_command


class InboxSettings(EventServiceSettings):
    service_name: str = "inbox"


def _runtime() -> ServiceRuntime:
    registry = EventRegistry()
    kernel = in_memory_kernel(producer="inbox", registry=registry)
    return ServiceRuntime(InboxSettings(), registry, kernel=kernel)


async def test_several_handlers_of_one_type_run_in_registration_order() -> None:
    runtime = _runtime()
    seen: list[str] = []

    async def first(envelope: Any, ctx: Any) -> None:
        seen.append("first")

    async def second(envelope: Any, ctx: Any) -> None:
        seen.append("second")

    runtime.on("retention.EraseSubject", first)
    runtime.on("retention.EraseSubject", second)
    command = erase_command("0195f3a0-0000-7000-8000-00000000a11c")
    await runtime.dispatch(command, ctx=None)  # type: ignore[arg-type]
    assert seen == ["first", "second"]
    await runtime.dispatch(command.model_copy(update={"event_type": "other.Thing"}), None)  # type: ignore[arg-type]
    assert seen == ["first", "second"]


def test_the_same_handler_twice_is_refused() -> None:
    runtime = _runtime()

    async def handler(envelope: Any, ctx: Any) -> None:
        return None

    runtime.on("identity.SubjectErased", handler)
    with pytest.raises(ValueError, match="this handler already"):
        runtime.on("identity.SubjectErased", handler)
    assert runtime.consumed_topics() == ["identity.events"]
