"""Routes of the consent service (thin: parse, authorise, call the service layer, shape)."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response

from mmgen.consent.domain.events import SubjectExported
from mmgen.consent.domain.purposes import CATALOGUE
from mmgen.consent.domain.purposes import purpose as catalogue_purpose
from mmgen.consent.entrypoints.api.dependencies import (
    Admin,
    Container,
    Gpc,
    MaybePrincipal,
    Person,
    StaffOrCompliance,
    actor_of,
    evidence_of,
    traceparent,
)
from mmgen.consent.entrypoints.api.schemas import (
    ConsentIn,
    ConsentOut,
    ConsentsOut,
    PoliciesOut,
    PolicyIn,
    PolicyOut,
    PolicyWithTextOut,
    PurposeOut,
    PurposesOut,
    TrackingEventIn,
    TrackingOut,
)
from mmgen.events.asyncapi import events_asyncapi
from mmgen.events.envelope import Actor
from mmgen.events.ids import new_event_id
from mmgen.events.mapper import NewEvent
from mmgen.platform import ProblemError
from mmgen.platform.auth import Principal, Purpose, require_service

#: When this service started honouring GPC (the `lastUpdate` of /.well-known/gpc.json).
GPC_LAST_UPDATE = date(2026, 11, 25)

router = APIRouter()


class TrackingPropertiesTooLargeError(ProblemError):
    status = 422
    slug = "tracking-properties-too-large"
    title = "Tracking event properties too large"


def _consent_out(doc: dict[str, Any]) -> ConsentOut:
    return ConsentOut(
        purpose=doc["purpose"],
        granted=doc["granted"],
        policy_version=doc.get("policy_version"),
        method=doc["method"],
        decided_at=doc.get("decided_at"),
    )


# --- purposes and policies -------------------------------------------------------------------


@router.get("/purposes", name="list_purposes", tags=["purposes"])
async def list_purposes() -> PurposesOut:
    """The purposes catalogue: public, so anyone can see what data is processed and why."""
    return PurposesOut(
        items=[
            PurposeOut(
                id=p.id,
                legal_basis=p.legal_basis.value,
                description=p.description,
                data_categories=list(p.data_categories),
                consent_based=p.consent_based,
            )
            for p in CATALOGUE.values()
        ]
    )


@router.post("/policies", name="publish_policy", status_code=201, tags=["policies"])
async def publish_policy(body: PolicyIn, admin: Admin, consent: Container) -> PolicyOut:
    """Publish a policy version (admin). Its SHA-256 binds later consents to the exact text."""
    doc = await consent.service.publish_policy(
        version=body.version,
        effective_at=body.effective_at,
        title=body.title,
        text=body.text,
        actor=actor_of(admin),
    )
    return PolicyOut.model_validate(doc)


@router.get("/policies/current", name="current_policy", tags=["policies"])
async def current_policy(consent: Container) -> PolicyWithTextOut:
    """The newest published version whose effective date has come (public)."""
    doc = await consent.service.current_policy()
    full = await consent.service.policy(doc["version"])
    return PolicyWithTextOut.model_validate(full)


@router.get("/policies", name="list_policies", tags=["policies"])
async def list_policies(consent: Container) -> PoliciesOut:
    """Every published version, newest effective date first (public)."""
    return PoliciesOut(items=[PolicyOut.model_validate(d) for d in await consent.policies.all()])


@router.get("/policies/{version}", name="get_policy", tags=["policies"])
async def get_policy(version: str, consent: Container) -> PolicyWithTextOut:
    """One published version with its text (public)."""
    return PolicyWithTextOut.model_validate(await consent.service.policy(version))


# --- consents -------------------------------------------------------------------------------


async def _apply_gpc(
    consent: Container, request: Request, who: Principal, gpc: bool, skip: tuple[str, ...] = ()
) -> list[str]:
    if not gpc:
        return []
    return await consent.service.apply_gpc(
        subject_id=who.subject_id,
        actor=actor_of(who),
        evidence=evidence_of(request),
        skip=skip,
        traceparent=traceparent(),
    )


@router.get("/consents/me", name="get_my_consents", tags=["consents"])
async def get_my_consents(
    request: Request, who: Person, gpc: Gpc, consent: Container
) -> ConsentsOut:
    """The caller's current decisions (a `Sec-GPC: 1` signal is recorded first)."""
    recorded = await _apply_gpc(consent, request, who, gpc)
    docs = await consent.service.consents_of(who.subject_id)
    return ConsentsOut(
        subject_id=who.subject_id, items=[_consent_out(d) for d in docs], gpc_recorded=recorded
    )


@router.put("/consents/me/{purpose}", name="set_my_consent", tags=["consents"])
async def set_my_consent(
    purpose: str, body: ConsentIn, request: Request, who: Person, gpc: Gpc, consent: Container
) -> ConsentOut:
    """Grant (`granted: true`) or withdraw (`false`) — the same one step either way.

    An explicit choice for a purpose wins over this request's GPC signal for that purpose
    (the user just made it); the signal still withdraws the other purposes it covers.
    """
    catalogue_purpose(purpose)  # 404 before anything else
    recorded = await _apply_gpc(consent, request, who, gpc, skip=(purpose,))
    state = await consent.service.set_consent(
        subject_id=who.subject_id,
        purpose=purpose,
        granted=body.granted,
        policy_version=body.policy_version,
        actor=actor_of(who),
        evidence=evidence_of(request),
        traceparent=traceparent(),
    )
    del recorded
    return ConsentOut(
        purpose=state.purpose,
        granted=state.granted,
        policy_version=state.policy_version,
        method=state.method,
        decided_at=state.decided_at,
    )


@router.get("/consents/{subject_id}", name="get_subject_consents", tags=["consents"])
async def get_subject_consents(
    subject_id: UUID, who: StaffOrCompliance, purpose: Purpose, consent: Container
) -> ConsentsOut:
    """A subject's decisions, for staff and compliance with a declared purpose; audited."""
    docs = await consent.service.consents_of(str(subject_id))
    await consent.service.record_read(
        subject_id=str(subject_id),
        actor=actor_of(who),
        purpose=str(purpose) if purpose else None,
        records=len(docs),
        traceparent=traceparent(),
    )
    return ConsentsOut(subject_id=str(subject_id), items=[_consent_out(d) for d in docs])


# --- tracking gate --------------------------------------------------------------------------


@router.post("/tracking/events", name="track_event", status_code=202, tags=["tracking"])
async def track_event(
    body: TrackingEventIn,
    request: Request,
    who: MaybePrincipal,
    gpc: Gpc,
    consent: Container,
) -> TrackingOut:
    """Accept an analytics event only under `cookies.analytics`; otherwise drop and count it.

    Always 202: a tracking beacon is never retried by the browser, the body says what
    happened. Anonymous callers' events are dropped (no consent on record to rely on).
    """
    size = len(json.dumps(body.properties, separators=(",", ":"), default=str).encode())
    limit = consent.settings.tracking_max_properties_bytes
    if size > limit:
        raise TrackingPropertiesTooLargeError(
            f"properties take {size} bytes of JSON; at most {limit} are accepted",
            extensions={"errors": [{"field": "properties", "msg": f"at most {limit} bytes"}]},
        )
    human = who is not None and not who.is_service
    if human and who is not None:
        await _apply_gpc(consent, request, who, gpc)
    outcome = await consent.service.track(
        subject_id=who.subject_id if human and who is not None else None,
        actor=actor_of(who) if human and who is not None else None,
        gpc=gpc,
        name=body.name,
        client_occurred_at=body.occurred_at,
        page=body.page,
        properties=body.properties,
        traceparent=traceparent(),
    )
    return TrackingOut(accepted=outcome.accepted, reason=outcome.reason, event_id=outcome.event_id)


@router.get("/.well-known/gpc.json", name="gpc_support", tags=["tracking"])
async def gpc_support() -> dict[str, Any]:
    """GPC support resource (GPC spec §4): this site honours the signal."""
    return {"gpc": True, "lastUpdate": GPC_LAST_UPDATE.isoformat()}


# --- erasure contract -----------------------------------------------------------------------

InternalCaller = Annotated[Principal, Depends(require_service("retention"))]


@router.get("/internal/subjects/{subject_id}/export", name="export_subject", tags=["internal"])
async def export_subject(subject_id: UUID, caller: InternalCaller, consent: Container) -> Any:
    """Everything held on the subject, decrypted (for retention's access requests); audited."""
    package = await consent.erasure.export(str(subject_id))
    event_id = new_event_id()
    await consent.repo.append(
        f"export:{event_id}",
        0,
        [
            NewEvent(
                SubjectExported(
                    consent_records=len(package["consents"]),
                    tracking_events=len(package["tracking_events"]),
                ),
                subject_id=str(subject_id),
                actor=Actor(id=caller.subject_id, role=str(caller.role)),
                purpose="legal_compliance",
                resource_id=str(subject_id),
                event_id=event_id,
                traceparent=traceparent(),
            )
        ],
    )
    return package


@router.get(
    "/internal/subjects/{subject_id}/footprint", name="subject_footprint", tags=["internal"]
)
async def subject_footprint(subject_id: UUID, caller: InternalCaller, consent: Container) -> Any:
    """Per category: records and readable personal fields (counts only, no contents)."""
    del caller
    return await consent.erasure.footprint(str(subject_id))


# --- AsyncAPI -------------------------------------------------------------------------------


@router.get("/asyncapi.json", name="asyncapi", tags=["meta"])
async def asyncapi(consent: Container) -> Response:
    """The AsyncAPI document of `consent.events` (generated from the event registry)."""
    from mmgen.consent.domain.events import registry

    doc = events_asyncapi(
        registry,
        consent.events_topic,
        service="consent",
        bootstrap=consent.settings.kafka_bootstrap,
    )
    return Response(json.dumps(doc), media_type="application/json")
