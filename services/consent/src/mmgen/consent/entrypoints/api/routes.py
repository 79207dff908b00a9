"""Routes of the consent service (thin: parse, authorise, call the service layer, shape).

`/internal/subjects/{id}/export|footprint`, `/asyncapi.json`, health and metrics come from the
runtime (`build_service_app`), the audit log's `/audit/*` from its component.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request

from mmgen.consent.adapters.read_models import PolicySummary
from mmgen.consent.domain.model import ConsentState
from mmgen.consent.domain.purposes import CATALOGUE
from mmgen.consent.domain.purposes import purpose as catalogue_purpose
from mmgen.consent.entrypoints.api.dependencies import (
    Admin,
    ConsentReadPurpose,
    Container,
    Gpc,
    MaybePrincipal,
    Person,
    StaffOrCompliance,
    evidence_of,
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
from mmgen.events.envelope import Actor
from mmgen.platform import ProblemError
from mmgen.runtime.trail import CurrentActor, actor_of

#: When this service started honouring GPC (the `lastUpdate` of /.well-known/gpc.json).
GPC_LAST_UPDATE = date(2026, 11, 25)

router = APIRouter()


class TrackingPropertiesTooLargeError(ProblemError):
    status = 422
    slug = "tracking-properties-too-large"
    title = "Tracking event properties too large"


def _consent_out(state: ConsentState) -> ConsentOut:
    return ConsentOut(
        purpose=state.purpose,
        granted=state.granted,
        policy_version=state.policy_version,
        method=state.method,
        decided_at=state.decided_at,
    )


def _policy_out(policy: PolicySummary) -> PolicyOut:
    return PolicyOut(
        version=policy.version,
        title=policy.title,
        effective_at=policy.effective_at,
        sha256=policy.sha256,
        published_at=policy.published_at,
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
async def publish_policy(
    body: PolicyIn, admin: Admin, actor: CurrentActor, consent: Container
) -> PolicyOut:
    """Publish a policy version (admin). Its SHA-256 binds later consents to the exact text."""
    policy = await consent.service.publish_policy(
        version=body.version,
        effective_at=body.effective_at,
        title=body.title,
        text=body.text,
        actor=actor,
    )
    return _policy_out(policy)


@router.get("/policies/current", name="current_policy", tags=["policies"])
async def current_policy(consent: Container) -> PolicyWithTextOut:
    """The newest published version whose effective date has come (public)."""
    policy = await consent.service.current_policy()
    return PolicyWithTextOut(**_policy_out(policy).model_dump(), text=policy.text)


@router.get("/policies", name="list_policies", tags=["policies"])
async def list_policies(consent: Container) -> PoliciesOut:
    """Every published version, newest effective date first (public)."""
    return PoliciesOut(items=[_policy_out(p) for p in await consent.service.list_policies()])


@router.get("/policies/{version}", name="get_policy", tags=["policies"])
async def get_policy(version: str, consent: Container) -> PolicyWithTextOut:
    """One published version with its text (public)."""
    policy = await consent.service.policy(version)
    return PolicyWithTextOut(**_policy_out(policy).model_dump(), text=policy.text)


# --- consents -------------------------------------------------------------------------------


async def _apply_gpc(
    consent: Container,
    request: Request,
    subject_id: str,
    actor: Actor,
    gpc: bool,
    skip: tuple[str, ...] = (),
) -> list[str]:
    if not gpc:
        return []
    return await consent.service.apply_gpc(
        subject_id=subject_id, actor=actor, evidence=evidence_of(request), skip=skip
    )


@router.get("/consents/me", name="get_my_consents", tags=["consents"])
async def get_my_consents(
    request: Request, who: Person, actor: CurrentActor, gpc: Gpc, consent: Container
) -> ConsentsOut:
    """The caller's current decisions (a `Sec-GPC: 1` signal is recorded first)."""
    recorded = await _apply_gpc(consent, request, who.subject_id, actor, gpc)
    states = await consent.service.consents_of(who.subject_id)
    return ConsentsOut(
        subject_id=who.subject_id, items=[_consent_out(s) for s in states], gpc_recorded=recorded
    )


@router.put("/consents/me/{purpose}", name="set_my_consent", tags=["consents"])
async def set_my_consent(
    purpose: str,
    body: ConsentIn,
    request: Request,
    who: Person,
    actor: CurrentActor,
    gpc: Gpc,
    consent: Container,
) -> ConsentOut:
    """Grant (`granted: true`) or withdraw (`false`) — the same one step either way.

    An explicit choice for a purpose wins over this request's GPC signal for that purpose
    (the user just made it); the signal still withdraws the other purposes it covers.
    """
    catalogue_purpose(purpose)  # 404 before anything else
    await _apply_gpc(consent, request, who.subject_id, actor, gpc, skip=(purpose,))
    state = await consent.service.set_consent(
        subject_id=who.subject_id,
        purpose=purpose,
        granted=body.granted,
        policy_version=body.policy_version,
        actor=actor,
        evidence=evidence_of(request),
    )
    return _consent_out(state)


@router.get("/consents/{subject_id}", name="get_subject_consents", tags=["consents"])
async def get_subject_consents(
    subject_id: UUID,
    who: StaffOrCompliance,
    actor: CurrentActor,
    purpose: ConsentReadPurpose,
    consent: Container,
) -> ConsentsOut:
    """A subject's decisions, for staff and compliance with a declared purpose; audited."""
    states = await consent.service.read_consents(
        subject_id=str(subject_id), actor=actor, purpose=str(purpose) if purpose else None
    )
    return ConsentsOut(subject_id=str(subject_id), items=[_consent_out(s) for s in states])


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
    person = who if who is not None and not who.is_service else None
    actor = actor_of(person)
    if person is not None and actor is not None:
        await _apply_gpc(consent, request, person.subject_id, actor, gpc)
    outcome = await consent.service.track(
        subject_id=person.subject_id if person is not None else None,
        actor=actor,
        gpc=gpc,
        name=body.name,
        client_occurred_at=body.occurred_at,
        page=body.page,
        properties=body.properties,
    )
    return TrackingOut(accepted=outcome.accepted, reason=outcome.reason, event_id=outcome.event_id)


@router.get("/.well-known/gpc.json", name="gpc_support", tags=["tracking"])
async def gpc_support() -> dict[str, Any]:
    """GPC support resource (GPC spec §4): this site honours the signal."""
    return {"gpc": True, "lastUpdate": GPC_LAST_UPDATE.isoformat()}
