"""Service-layer unit tests over the in-memory fakes (no database, no broker): decisions,
GPC, the tracking gate, policies, erasure through the runtime's inbox, export and footprint,
and the read-model projection rebuilding what the use cases wrote."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from mmgen.consent.adapters.memory import (
    InMemoryConsentReadModel,
    InMemoryPolicyReadModel,
    InMemoryTrackingReadModel,
)
from mmgen.consent.adapters.projection import ReadModelProjection
from mmgen.consent.bootstrap import Consent
from mmgen.consent.domain.errors import (
    ConsentError,
    NoCurrentPolicyError,
    PolicyNotFoundError,
    PolicyVersionExistsError,
    PolicyVersionUnknownError,
    PurposeNotConsentBasedError,
    SubjectErasedError,
)
from mmgen.consent.domain.events import ConsentEvidence
from mmgen.consent.domain.model import SubjectConsents, consent_stream
from mmgen.consent.entrypoints.api.problems import PROBLEMS
from mmgen.events.envelope import Actor, Envelope
from mmgen.runtime.erasure import answer_id
from mmgen.runtime.testing import anonymize_command, erase_command, eventually

EVIDENCE = ConsentEvidence(user_agent="UA/1", client_ip="198.51.100.4")
ADMIN = Actor(id="admin-1", role="admin")


def person() -> tuple[str, Actor]:
    subject = str(uuid.uuid4())
    return subject, Actor(id=subject, role="client")


async def publish(consent: Consent, version: str = "v1", days: int = -1) -> str:
    await consent.service.publish_policy(
        version=version,
        effective_at=datetime.now(UTC) + timedelta(days=days),
        title=f"Policy {version}",
        text=f"text of {version}",
        actor=ADMIN,
    )
    return version


async def decide(consent: Consent, subject: str, actor: Actor, purpose: str, granted: bool):
    return await consent.service.set_consent(
        subject_id=subject,
        purpose=purpose,
        granted=granted,
        policy_version="v1",
        actor=actor,
        evidence=EVIDENCE,
    )


async def stored(consent: Consent) -> list[Envelope]:
    store = consent.runtime.kernel.store
    return await store.read_range(1, await store.last_seq() + 1)


async def test_policies_are_published_once_and_the_current_one_is_in_effect(consent) -> None:
    with pytest.raises(NoCurrentPolicyError):
        await consent.service.current_policy()
    await publish(consent, "v1", days=-2)
    await publish(consent, "v2", days=-1)
    await publish(consent, "v3", days=+5)
    assert (await consent.service.current_policy()).version == "v2"
    assert [p.version for p in await consent.service.list_policies()] == ["v3", "v2", "v1"]
    with pytest.raises(PolicyVersionExistsError):
        await publish(consent, "v2")
    with pytest.raises(PolicyNotFoundError):
        await consent.service.policy("v9")
    assert (await consent.service.policy("v1")).text == "text of v1"


async def test_grant_and_withdraw_are_one_event_each_and_show_at_once(consent) -> None:
    await publish(consent)
    subject, actor = person()
    state = await decide(consent, subject, actor, "marketing.email", True)
    assert state.granted and state.method == "explicit" and state.policy_version == "v1"
    assert await consent.service.is_granted(subject, "marketing.email")
    await decide(consent, subject, actor, "marketing.email", False)
    assert not await consent.service.is_granted(subject, "marketing.email")
    await decide(consent, subject, actor, "marketing.email", False)  # a repeat: nothing new
    events = [e for e in await stored(consent) if e.subject_id == subject]
    assert [e.event_type for e in events] == [
        "consent.ConsentGranted",
        "consent.ConsentWithdrawn",
    ]
    assert [s.purpose for s in await consent.service.consents_of(subject)] == ["marketing.email"]


async def test_refused_decisions_store_nothing(consent) -> None:
    await publish(consent)
    subject, actor = person()
    before = len(await stored(consent))
    with pytest.raises(PurposeNotConsentBasedError):
        await decide(consent, subject, actor, "project_execution", True)
    with pytest.raises(PolicyVersionUnknownError):
        await consent.service.set_consent(
            subject_id=subject,
            purpose="marketing.email",
            granted=True,
            policy_version="v7",
            actor=actor,
            evidence=EVIDENCE,
        )
    assert len(await stored(consent)) == before
    assert await consent.service.consents_of(subject) == []


async def test_gpc_withdraws_sale_and_analytics_once_under_the_current_policy(consent) -> None:
    await publish(consent)
    subject, actor = person()
    await decide(consent, subject, actor, "cookies.analytics", True)
    recorded = await consent.service.apply_gpc(subject_id=subject, actor=actor, evidence=EVIDENCE)
    assert sorted(recorded) == ["cookies.analytics", "data.sale_sharing"]
    assert await consent.service.apply_gpc(subject_id=subject, actor=actor, evidence=EVIDENCE) == []
    states = {s.purpose: s for s in await consent.service.consents_of(subject)}
    assert {p: (s.granted, s.method, s.policy_version) for p, s in states.items()} == {
        "cookies.analytics": (False, "gpc", "v1"),
        "data.sale_sharing": (False, "gpc", "v1"),
    }
    other, other_actor = person()
    skipped = await consent.service.apply_gpc(
        subject_id=other, actor=other_actor, evidence=EVIDENCE, skip=("cookies.analytics",)
    )
    assert skipped == ["data.sale_sharing"]


async def track_events(consent, subject: str, actor: Actor, count: int) -> None:
    """`count` analytics events of the subject, accepted under their consent."""
    for _ in range(count):
        await consent.service.track(
            subject_id=subject,
            actor=actor,
            gpc=False,
            name="e",
            client_occurred_at=None,
            page=None,
            properties={},
        )


async def test_the_tracking_gate_accepts_only_under_analytics_consent(consent) -> None:
    await publish(consent)
    subject, actor = person()

    async def track(gpc: bool = False, who: tuple[str, Actor] | None = (subject, actor)):
        sid, act = who if who is not None else (None, None)
        return await consent.service.track(
            subject_id=sid,
            actor=act,
            gpc=gpc,
            name="page_view",
            client_occurred_at=None,
            page="/p",
            properties={"k": "v"},
        )

    assert (await track(who=None)).reason == "anonymous"
    assert (await track()).reason == "no_consent"
    await decide(consent, subject, actor, "cookies.analytics", True)
    assert (await track(gpc=True)).reason == "gpc"
    accepted = [await track() for _ in range(5)]
    assert all(o.accepted and o.reason == "consent_granted" for o in accepted)
    kept = await consent.tracking.of_subject(subject, 100)
    assert [e.event_id for e in kept] == [o.event_id for o in accepted[-3:]]  # bounded to 3
    await decide(consent, subject, actor, "cookies.analytics", False)
    assert (await track()).reason == "no_consent"


async def test_an_event_the_bound_dropped_is_not_stored_again_when_applied_again(
    consent, monkeypatch
) -> None:
    """The inline write and the projector both apply each event; the later one must not put
    back an event the bound already dropped (the subject would hold one too many)."""
    await publish(consent)
    subject, actor = person()
    await decide(consent, subject, actor, "cookies.analytics", True)
    await track_events(consent, subject, actor, 5)
    kept = [e.event_id for e in await consent.tracking.of_subject(subject, 100)]
    assert len(kept) == 3
    added: list[str] = []
    add = consent.tracking.add

    async def noted(event) -> None:
        added.append(event.event_id)
        await add(event)

    monkeypatch.setattr(consent.tracking, "add", noted)
    projection = ReadModelProjection(
        consent.runtime.kernel.keystore,
        consent.consents,
        consent.policies,
        consent.tracking,
        max_tracking_events_per_subject=3,
    )
    for envelope in await stored(consent):
        await projection.apply(envelope)
    assert added == []  # the two dropped were not put back, the three kept are there
    assert [e.event_id for e in await consent.tracking.of_subject(subject, 100)] == kept


async def test_erasure_through_the_inbox_answers_once_and_zeroes_the_footprint(consent) -> None:
    await publish(consent)
    subject, actor = person()
    await decide(consent, subject, actor, "cookies.analytics", True)
    await decide(consent, subject, actor, "marketing.email", True)
    await consent.service.track(
        subject_id=subject,
        actor=actor,
        gpc=False,
        name="page_view",
        client_occurred_at=None,
        page="/p",
        properties={},
    )
    before = await consent.erasure.footprint(subject)
    assert before.total_records == 5 and before.readable_personal_fields > 0

    command = erase_command(subject)
    await consent.runtime.dispatch(command, None)  # type: ignore[arg-type]
    await consent.runtime.dispatch(command, None)  # type: ignore[arg-type]  # redelivered

    answers = [e for e in await stored(consent) if e.event_type == "consent.SubjectErased"]
    assert [a.event_id for a in answers] == [answer_id(command, "consent")]
    assert answers[0].data["records_deleted"] == {"consent": 2, "usage": 1}
    assert answers[0].data["keys_shredded"] == 1
    after = await consent.erasure.footprint(subject)
    assert after.key_erased and after.total_records == 0 and after.readable_personal_fields == 0
    export = await consent.erasure.export(subject)
    assert export.erased and export.records == {}
    assert export.events and all(e.personal == {"erased": True} for e in export.events)
    with pytest.raises(SubjectErasedError):
        await decide(consent, subject, actor, "marketing.email", True)


async def test_held_usage_keeps_the_key_and_the_analytics_events(consent) -> None:
    await publish(consent)
    subject, actor = person()
    await decide(consent, subject, actor, "cookies.analytics", True)
    await consent.service.track(
        subject_id=subject,
        actor=actor,
        gpc=False,
        name="page_view",
        client_occurred_at=None,
        page="/kept",
        properties={},
    )
    await consent.runtime.dispatch(erase_command(subject, held=["usage"]), None)  # type: ignore[arg-type]
    footprint = await consent.erasure.footprint(subject)
    assert not footprint.key_erased
    assert footprint.categories["usage"].records == 1
    export = await consent.erasure.export(subject)
    assert export.records and all(k.startswith("tracking_event:") for k in export.records)
    tracked = [e for e in export.events if e.event_type == "consent.TrackingEventAccepted"]
    assert tracked[0].personal == {"page": "/kept", "properties": {}}


async def test_anonymize_is_answered_with_nothing_anonymized(consent) -> None:
    command = anonymize_command("project", str(uuid.uuid4()))
    await consent.runtime.dispatch(command, None)  # type: ignore[arg-type]
    (answer,) = [e for e in await stored(consent) if e.event_type == "consent.ResourceAnonymized"]
    assert answer.data["records_anonymized"] == {} and answer.data["keys_shredded"] == 0


async def test_replaying_the_store_rebuilds_the_read_models_the_use_cases_wrote(consent) -> None:
    """The catch-up projector's path (every stored event, in order) ends where the inline
    path did — including a GPC decision of two events and an erasure with `usage` held."""
    await publish(consent, "v1")
    await publish(consent, "v2", days=+3)
    people = [person() for _ in range(3)]
    for subject, actor in people:
        await decide(consent, subject, actor, "cookies.analytics", True)
        await track_events(consent, subject, actor, 4)
    await consent.service.apply_gpc(subject_id=people[1][0], actor=people[1][1], evidence=EVIDENCE)
    await consent.runtime.dispatch(erase_command(people[2][0], held=["usage"]), None)  # type: ignore[arg-type]

    rebuilt = ReadModelProjection(
        consent.runtime.kernel.keystore,
        InMemoryConsentReadModel(),
        InMemoryPolicyReadModel(),
        InMemoryTrackingReadModel(),
        max_tracking_events_per_subject=3,
    )
    for envelope in await stored(consent):
        await rebuilt.apply(envelope)
    assert rebuilt.consents.rows == consent.consents.rows  # type: ignore[attr-defined]
    assert rebuilt.policies.policies == consent.policies.policies  # type: ignore[attr-defined]
    assert rebuilt.tracking.events == consent.tracking.events  # type: ignore[attr-defined]
    assert await consent.consents.of_subject(people[2][0]) == []


async def test_the_runtime_projects_what_was_appended_without_the_use_cases(consent) -> None:
    """In memory too, the projection registered by bootstrap catches up with the store."""
    subject, actor = person()
    aggregate = SubjectConsents(consent_stream(subject))
    aggregate.decide(
        subject_id=subject,
        purpose="marketing.email",
        granted=True,
        policy_version=None,
        method="explicit",
        actor=actor,
        evidence=EVIDENCE,
    )
    await consent.runtime.kernel.repository.save(aggregate)
    assert await consent.consents.of_subject(subject) == []
    async with consent.runtime.lifespan():
        states = await eventually(lambda: consent.consents.of_subject(subject), timeout=5)
    assert [(s.purpose, s.granted) for s in states] == [("marketing.email", True)]


def test_every_domain_error_has_a_problem() -> None:
    def subclasses(cls: type) -> set[type]:
        return {cls} | {s for c in cls.__subclasses__() for s in subclasses(c)}

    assert subclasses(ConsentError) - {ConsentError} == set(PROBLEMS)
    assert PROBLEMS[NoCurrentPolicyError].status == 404
    assert PROBLEMS[SubjectErasedError].slug == "subject-erased"
