"""The service's parts on `mmgen.runtime` in memory: what a bootstrap will register, working.

The runtime tails the store into `ProfileProjection`, dispatches other services' events to
`ForeignEvents`' handlers, and obeys retention's commands through `ProfilesErasure`.
"""

from __future__ import annotations

from typing import Any

from mmgen.events.kernel import in_memory_kernel
from mmgen.profiles.adapters.memory import (
    InMemoryConsentGrants,
    InMemoryMemberships,
    InMemoryProfileReadModel,
    InMemorySearchIndex,
)
from mmgen.profiles.adapters.projection import ForeignEvents, ProfileProjection
from mmgen.profiles.adapters.read_models import KeystoreErasedSubjects
from mmgen.profiles.domain.events import profiles_registry
from mmgen.profiles.domain.reveal import Viewer
from mmgen.profiles.domain.search import SearchQuery
from mmgen.profiles.service_layer.erasure import ProfilesErasure
from mmgen.profiles.service_layer.profiles import (
    Relationships,
    publish_profile,
    put_profile,
    reveal_sensitive,
)
from mmgen.profiles.service_layer.search import search_profiles
from mmgen.profiles.settings import ProfilesSettings
from mmgen.runtime.erasure import answer_id
from mmgen.runtime.service import ServiceRuntime
from mmgen.runtime.testing import erase_command, eventually

from ..conftest import TODAY, consent_event, creator_actor, details, new_id, sensitive


async def test_the_parts_run_on_the_runtime() -> None:
    settings = ProfilesSettings(environment="test", projector_idle_wait_seconds=0.05)
    registry = profiles_registry()
    kernel = in_memory_kernel(producer="profiles", registry=registry)
    runtime = ServiceRuntime(settings, registry, kernel=kernel)
    profiles, index = InMemoryProfileReadModel(), InMemorySearchIndex()
    consents, memberships = InMemoryConsentGrants(), InMemoryMemberships()
    projection = ProfileProjection(kernel.repository, profiles, index)
    runtime.projection(projection.name, projection.apply, reset=projection.reset)
    foreign = ForeignEvents(
        consents=consents,
        memberships=memberships,
        profiles=profiles,
        index=index,
        erased=KeystoreErasedSubjects(kernel.keystore),
    )
    for event_type, handler in foreign.handlers().items():
        runtime.on(event_type, handler)
    commands = runtime.erasure(
        ProfilesErasure(
            repository=kernel.repository,
            keystore=kernel.keystore,
            profiles=profiles,
            index=index,
            consents=consents,
            memberships=memberships,
        )
    )
    creator = new_id()
    client = Viewer(new_id(), "client")

    async def found() -> list[str]:
        page = await search_profiles(
            index, profiles, viewer=client, query=SearchQuery(q="mia"), limit=10
        )
        return [p.creator_id for p in page.items]

    async with runtime.lifespan():
        actor = creator_actor(creator)
        await put_profile(
            kernel.repository, actor=actor, details=details(), sensitive=sensitive(), today=TODAY
        )
        await publish_profile(kernel.repository, actor=actor)
        assert await eventually(found, timeout=5) == [creator]

        ctx: Any = None  # in memory: no transaction
        await runtime.dispatch(consent_event(creator, granted=True, version=2), ctx)
        shown = await reveal_sensitive(
            profiles,
            Relationships(consents, memberships),
            kernel.repository,
            viewer=client,
            creator_id=creator,
        )
        assert shown.fields

        command = erase_command(creator)
        await commands.handle(command)
        assert await found() == []
        answer = await kernel.store.get(answer_id(command, "profiles"))
        assert answer is not None and answer.event_type == "profiles.SubjectErased"
        assert answer.data["keys_shredded"] == 1
