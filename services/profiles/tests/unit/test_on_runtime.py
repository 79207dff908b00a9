"""`bootstrap()` over an in-memory kernel: the service's parts wired on `mmgen.runtime`, working.

The runtime tails the store into `ProfileProjection`, dispatches other services' events to
`ForeignEvents`' handlers, and obeys retention's commands through `ProfilesErasure`.
"""

from __future__ import annotations

from typing import Any

from mmgen.events.kernel import in_memory_kernel
from mmgen.profiles.adapters.memory import InMemoryConsentGrants
from mmgen.profiles.bootstrap import bootstrap
from mmgen.profiles.domain.events import profiles_registry
from mmgen.profiles.domain.reveal import Viewer
from mmgen.profiles.domain.search import SearchQuery
from mmgen.profiles.service_layer.profiles import publish_profile, put_profile, read_profile
from mmgen.profiles.service_layer.search import search_profiles
from mmgen.profiles.settings import ProfilesSettings
from mmgen.runtime.erasure import answer_id
from mmgen.runtime.testing import command_key_settings, erase_command, eventually

from ..conftest import TODAY, consent_event, creator_actor, details, new_id, sensitive


def settings() -> ProfilesSettings:
    return ProfilesSettings(
        environment="test", projector_idle_wait_seconds=0.05, **command_key_settings()
    )


def test_bootstrap_registers_every_handler_and_takes_fakes() -> None:
    consents = InMemoryConsentGrants()
    kernel = in_memory_kernel(producer="profiles", registry=profiles_registry())
    wired = bootstrap(settings(), kernel=kernel, consents=consents)
    assert wired.consents is consents and wired.revocations is None
    assert wired.runtime.participant is wired.erasure
    assert set(wired.runtime.consumed_topics()) == {
        wired.runtime.topics.events(producer) for producer in ("consent", "projects", "identity")
    } | {wired.runtime.topics.retention_commands}


async def test_the_service_runs_on_the_runtime() -> None:
    kernel = in_memory_kernel(producer="profiles", registry=profiles_registry())
    wired = bootstrap(settings(), kernel=kernel)
    runtime = wired.runtime
    creator = new_id()
    client = Viewer(new_id(), "client")

    async def found() -> list[str]:
        page = await search_profiles(
            wired.index, wired.profiles, viewer=client, query=SearchQuery(q="mia"), limit=10
        )
        return [p.creator_id for p in page.items]

    async with runtime.lifespan():
        actor = creator_actor(creator)
        await put_profile(
            kernel.repository, actor=actor, details=details(), sensitive=sensitive(), today=TODAY
        )
        await publish_profile(kernel.repository, actor=actor)
        assert await eventually(found, timeout=5) == [creator]  # the runtime's projection

        ctx: Any = None  # in memory: no transaction
        await runtime.dispatch(consent_event(creator, granted=True, version=2), ctx)
        shown = await read_profile(
            wired.profiles,
            wired.relationships,
            wired.repository,
            viewer=client,
            creator_id=creator,
        )
        assert shown.revealed is not None and shown.revealed.fields

        command = erase_command(creator)
        await runtime.dispatch(command, ctx)
        assert await found() == []
        answer = await kernel.store.get(answer_id(command, "profiles"))
        assert answer is not None and answer.event_type == "profiles.SubjectErased"
        assert answer.data["keys_shredded"] == 1
