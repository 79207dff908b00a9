"""Routes of the retention service (thin: authorise, call the use case, shape, audit reads).

Who may do what:

| route | who |
|---|---|
| `POST /privacy-requests` | the subject (an erasure: a recent sign-in, or the password and, with TOTP, a code); staff or compliance on a subject's behalf |
| `GET /privacy-requests/{id}`, `.../receipt` | the subject, or compliance |
| `GET /privacy-requests` | compliance |
| `POST /privacy-requests/{id}/extension`, `.../rejection` | compliance |
| `POST /privacy-requests/{id}/resolution` | staff or compliance |
| `GET /privacy-requests/{id}/export` | the requester only |
| `GET|POST /retention/policies` | compliance (POST: admin too) |
| `GET|POST /retention/holds`, `DELETE /retention/holds/{id}`, `POST /retention/run` | compliance |
| `GET /.well-known/jwks.json` | anyone |

Staff, compliance and admin declare `X-Purpose: legal_compliance`. Every refusal is a 401/403
problem (the runtime records it as `retention.AccessDenied`); every read of a request, list,
package or receipt is a `retention.DataAccessed` event naming the reader and purpose.
`/internal/subjects/{id}/export|footprint`, health, metrics and AsyncAPI come from the runtime.
"""  # noqa: E501

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from mmgen.events.registry import KNOWN_CATEGORIES
from mmgen.platform.auth import (
    CurrentPrincipal,
    Principal,
    ProcessingPurpose,
    Role,
    RoleNotAllowedError,
)
from mmgen.platform.pagination import Page
from mmgen.retention.bootstrap import Retention
from mmgen.retention.domain.credentials import SignInCredentials
from mmgen.retention.domain.errors import SecondFactorNeededError
from mmgen.retention.domain.holds import HoldView
from mmgen.retention.domain.policies import RetentionPolicy
from mmgen.retention.entrypoints.api.dependencies import (
    Compliance,
    Container,
    LegalPurpose,
    PolicyWriter,
    StaffOrCompliance,
)
from mmgen.retention.entrypoints.api.problems import (
    NotYoursError,
    OnBehalfNotAllowedError,
    ReauthenticationFailedError,
    ReauthenticationSecondFactorRequiredError,
    RecentSignInRequiredError,
    SubjectRequiredError,
)
from mmgen.retention.entrypoints.api.schemas import (
    AccessPackageOut,
    ExtensionIn,
    HoldIn,
    HoldOut,
    HoldPage,
    PoliciesOut,
    PolicyIn,
    PolicyOut,
    PrivacyRequestIn,
    PrivacyRequestOut,
    PrivacyRequestPage,
    RejectionIn,
    ResolutionIn,
    RunOut,
    StatusField,
)
from mmgen.runtime.trail import CurrentActor

router = APIRouter()
SUBJECT_ROLES = frozenset({Role.client, Role.creator})
ON_BEHALF_ROLES = frozenset({Role.staff, Role.compliance})
ACCOUNT = ("account",)
JOSE = "application/jose"


def _out(retention: Retention, view: dict[str, Any]) -> PrivacyRequestOut:
    return PrivacyRequestOut.of(view, retention.clock.now())


def _purpose(purpose: ProcessingPurpose | None) -> str | None:
    return None if purpose is None else purpose.value


async def _require_recent_sign_in(
    request: Request, principal: Principal, body: PrivacyRequestIn, retention: Retention
) -> None:
    """A sign-in within `recent_sign_in_seconds` (the token's `auth_time`: its `iat` is
    renewed by every refresh, so a token without `auth_time` is never recent), or the
    credentials again, which identity must accept for this same subject: email and password,
    and for an account with TOTP a current code or a recovery code (identity decides whether
    one is needed, and accepts each code once)."""
    max_age = retention.settings.recent_sign_in_seconds
    signed_in = principal.claims.get("auth_time")
    if isinstance(signed_in, int | float) and time.time() - float(signed_in) <= max_age:
        return
    if body.email is None or body.password is None:
        raise RecentSignInRequiredError(max_age)
    credentials = SignInCredentials(
        email=body.email,
        password=body.password.get_secret_value(),
        totp=body.totp,
        recovery_code=body.recovery_code.get_secret_value() if body.recovery_code else None,
    )
    try:
        token = await retention.password_check.access_token(credentials)
    except SecondFactorNeededError as exc:
        raise ReauthenticationSecondFactorRequiredError() from exc
    if token is None:
        raise ReauthenticationFailedError()
    proof = await request.app.state.token_verifier.verify(token)
    if proof.subject_id != principal.subject_id:
        raise ReauthenticationFailedError()


def _may_read(view: dict[str, Any], principal: Principal) -> None:
    """The subject of the request, or compliance (whose purpose was checked already)."""
    if principal.role is Role.compliance or view["subject_id"] == principal.subject_id:
        return
    raise NotYoursError(f"privacy request {view['request_id']} is not yours")


# --- privacy requests ----------------------------------------------------------------------------


@router.post(
    "/privacy-requests", name="submit_privacy_request", status_code=201, tags=["privacy requests"]
)
async def submit_privacy_request(
    body: PrivacyRequestIn,
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
    actor: CurrentActor,
    purpose: LegalPurpose,
    retention: Container,
) -> PrivacyRequestOut:
    """File an access, erasure or rectification request (201; 200 with the subject's open
    request of that type, if there is one). Deadline: one calendar month (Art. 12(3))."""
    if principal.role in SUBJECT_ROLES:
        if body.subject_id not in (None, principal.subject_id):
            raise OnBehalfNotAllowedError("only staff file requests on someone's behalf")
        subject_id = principal.subject_id
        if body.type == "erasure":
            await _require_recent_sign_in(request, principal, body, retention)
    elif principal.role in ON_BEHALF_ROLES:
        if body.subject_id is None:
            raise SubjectRequiredError("name the subject the request is filed for (subject_id)")
        subject_id = body.subject_id
    else:
        raise RoleNotAllowedError(principal.role, SUBJECT_ROLES | ON_BEHALF_ROLES)
    view, created = await retention.requests.submit(
        request_type=body.type, subject_id=subject_id, actor=actor, details=body.details
    )
    if not created:
        response.status_code = 200
    return _out(retention, view)


@router.get("/privacy-requests", name="list_privacy_requests", tags=["privacy requests"])
async def list_privacy_requests(
    who: Compliance,
    purpose: LegalPurpose,
    actor: CurrentActor,
    page: Page,
    retention: Container,
    status: StatusField | None = None,
    overdue: bool = Query(default=False, description="Only requests past their deadline"),
) -> PrivacyRequestPage:
    """Requests by id (or by deadline with `overdue=true`), `status` optional; paginated."""
    after = None if page.position is None else str(page.position.get("after", ""))
    views = await retention.requests.page(
        status=status, overdue=overdue, limit=page.limit + 1, after=after
    )
    found = page.page(views, lambda v: {"after": v["_id"]})
    await retention.runtime.trail.accessed(
        actor,
        route="/privacy-requests",
        resource_type="privacy_request",
        resource_id="list",
        categories=ACCOUNT,
        purpose=_purpose(purpose),
        records=len(found.items),
    )
    return PrivacyRequestPage(
        items=[_out(retention, v) for v in found.items], next_cursor=found.next_cursor
    )


@router.get("/privacy-requests/{request_id}", name="get_privacy_request", tags=["privacy requests"])
async def get_privacy_request(
    request_id: UUID,
    principal: CurrentPrincipal,
    actor: CurrentActor,
    purpose: LegalPurpose,
    retention: Container,
) -> PrivacyRequestOut:
    """Status, deadline, timeline, per-service acknowledgements and progress, held
    categories with their reasons."""
    view = await retention.requests.get(str(request_id))
    _may_read(view, principal)
    await retention.runtime.trail.accessed(
        actor,
        route="/privacy-requests/{request_id}",
        resource_type="privacy_request",
        resource_id=str(request_id),
        categories=ACCOUNT,
        purpose=_purpose(purpose),
        subject_id=view["subject_id"],
    )
    return _out(retention, view)


@router.post(
    "/privacy-requests/{request_id}/extension",
    name="extend_privacy_request",
    tags=["privacy requests"],
)
async def extend_privacy_request(
    request_id: UUID,
    body: ExtensionIn,
    who: Compliance,
    purpose: LegalPurpose,
    actor: CurrentActor,
    retention: Container,
) -> PrivacyRequestOut:
    """One extension of 1-2 months, with the reason (Art. 12(3)); 422 without one."""
    view = await retention.requests.extend(
        str(request_id), months=body.months, reason=body.reason, by=actor
    )
    return _out(retention, view)


@router.post(
    "/privacy-requests/{request_id}/rejection",
    name="reject_privacy_request",
    tags=["privacy requests"],
)
async def reject_privacy_request(
    request_id: UUID,
    body: RejectionIn,
    who: Compliance,
    purpose: LegalPurpose,
    actor: CurrentActor,
    retention: Container,
) -> PrivacyRequestOut:
    """Refuse a manifestly unfounded or excessive request (Art. 12(5)), with the reason."""
    view = await retention.requests.reject(str(request_id), reason=body.reason, by=actor)
    return _out(retention, view)


@router.post(
    "/privacy-requests/{request_id}/resolution",
    name="resolve_privacy_request",
    tags=["privacy requests"],
)
async def resolve_privacy_request(
    request_id: UUID,
    body: ResolutionIn,
    who: StaffOrCompliance,
    purpose: LegalPurpose,
    actor: CurrentActor,
    retention: Container,
) -> PrivacyRequestOut:
    """Close a rectification corrected through the owning service (named), with a note."""
    view = await retention.requests.resolve(
        str(request_id), service=body.service, note=body.note, by=actor
    )
    return _out(retention, view)


@router.get(
    "/privacy-requests/{request_id}/export",
    name="export_access_package",
    tags=["privacy requests"],
)
async def export_access_package(
    request_id: UUID,
    principal: CurrentPrincipal,
    actor: CurrentActor,
    purpose: LegalPurpose,
    retention: Container,
) -> AccessPackageOut:
    """The access package and its JSON Schema, for the one who asked for it."""
    view = await retention.requests.get(str(request_id))
    if view["requested_by"] != principal.subject_id:
        raise NotYoursError("only the requester downloads an access package")
    found = await retention.access.download(str(request_id), principal.subject_id)
    categories = [c["category"] for c in found["package"].get("categories", [])]
    await retention.runtime.trail.accessed(
        actor,
        route="/privacy-requests/{request_id}/export",
        resource_type="access_package",
        resource_id=str(request_id),
        categories=[c for c in categories if c in KNOWN_CATEGORIES] or ACCOUNT,
        purpose=_purpose(purpose),
        subject_id=view["subject_id"],
    )
    return AccessPackageOut(package=found["package"], schema=found["schema"])


@router.get(
    "/privacy-requests/{request_id}/receipt",
    name="get_erasure_receipt",
    tags=["privacy requests"],
    response_class=Response,
    responses={200: {"content": {JOSE: {}}, "description": "compact JWS (RFC 7515)"}},
)
async def get_erasure_receipt(
    request_id: UUID,
    principal: CurrentPrincipal,
    actor: CurrentActor,
    purpose: LegalPurpose,
    retention: Container,
) -> Response:
    """The signed erasure receipt (EdDSA, key at `/.well-known/jwks.json`); 409 until the
    erasure is verified (or partially completed) and a signed audit head covers it."""
    view = await retention.requests.get(str(request_id))
    _may_read(view, principal)
    token = await retention.receipts.receipt(str(request_id))
    await retention.runtime.trail.accessed(
        actor,
        route="/privacy-requests/{request_id}/receipt",
        resource_type="erasure_receipt",
        resource_id=str(request_id),
        categories=ACCOUNT,
        purpose=_purpose(purpose),
        subject_id=view["subject_id"],
    )
    return Response(token, media_type=JOSE)


@router.get("/.well-known/jwks.json", name="receipt_jwks", tags=["keys"])
async def receipt_jwks(retention: Container) -> JSONResponse:
    """The keys erasure receipts are signed with (RFC 7517): current first, then retired."""
    return JSONResponse(retention.receipts.jwks(), headers={"Cache-Control": "public, max-age=300"})


# --- policies, holds, runs -----------------------------------------------------------------------


def _policy_out(policy: RetentionPolicy) -> PolicyOut:
    return PolicyOut.model_validate(policy.to_json())


def _hold_out(hold: HoldView) -> HoldOut:
    return HoldOut.model_validate(hold.to_doc())


@router.get("/retention/policies", name="list_retention_policies", tags=["retention"])
async def list_retention_policies(
    who: Compliance, purpose: LegalPurpose, retention: Container
) -> PoliciesOut:
    """Every policy: category, trigger, period, action and legal basis."""
    return PoliciesOut(items=[_policy_out(p) for p in await retention.policies.all()])


@router.post(
    "/retention/policies", name="define_retention_policy", status_code=201, tags=["retention"]
)
async def define_retention_policy(
    body: PolicyIn, who: PolicyWriter, purpose: LegalPurpose, actor: CurrentActor,
    retention: Container,
) -> PolicyOut:  # fmt: skip
    """Set a policy (one per category, trigger and action: a later one replaces it)."""
    policy = await retention.policies.define(
        category=body.category,
        trigger_event=body.trigger_event,
        period=body.period,
        action=body.action,
        legal_basis=body.legal_basis,
        by=actor,
    )
    return _policy_out(policy)


@router.post("/retention/holds", name="place_legal_hold", status_code=201, tags=["retention"])
async def place_legal_hold(
    body: HoldIn, who: Compliance, purpose: LegalPurpose, actor: CurrentActor,
    retention: Container,
) -> HoldOut:  # fmt: skip
    """Keep categories of a subject's data despite erasure, with the legal basis and owner."""
    hold = await retention.holds.place(
        subject_id=body.subject_id,
        categories=body.categories,
        legal_basis=body.legal_basis,
        owner=body.owner,
        until=body.until,
        by=actor,
    )
    return _hold_out(hold)


@router.get("/retention/holds", name="list_legal_holds", tags=["retention"])
async def list_legal_holds(
    who: Compliance, purpose: LegalPurpose, actor: CurrentActor, page: Page,
    retention: Container,
) -> HoldPage:  # fmt: skip
    """Legal holds by id, paginated."""
    after = None if page.position is None else str(page.position.get("after", ""))
    holds = await retention.holds.page(limit=page.limit + 1, after=after)
    found = page.page(holds, lambda h: {"after": h.hold_id})
    await retention.runtime.trail.accessed(
        actor,
        route="/retention/holds",
        resource_type="legal_hold",
        resource_id="list",
        categories=ACCOUNT,
        purpose=_purpose(purpose),
        records=len(found.items),
    )
    return HoldPage(items=[_hold_out(h) for h in found.items], next_cursor=found.next_cursor)


@router.delete("/retention/holds/{hold_id}", name="release_legal_hold", tags=["retention"])
async def release_legal_hold(
    hold_id: UUID, who: Compliance, purpose: LegalPurpose, actor: CurrentActor,
    retention: Container,
) -> HoldOut:  # fmt: skip
    """End a hold: what it kept is ordered erased and an open erasure moves on to verified."""
    return _hold_out(await retention.holds.release(str(hold_id), by=actor))


@router.post("/retention/run", name="run_retention", tags=["retention"])
async def run_retention(
    who: Compliance, purpose: LegalPurpose, actor: CurrentActor, retention: Container
) -> RunOut:
    """One scheduler pass now: holds ended, overdue marked, erasures ordered or retried,
    packages collected or deleted, and every policy evaluated (the run lists each order and
    why)."""
    result = await retention.scheduler.run_now(by=actor)
    run = result.run
    return RunOut(
        run_id=run.run_id,
        started_at=run.started_at,
        completed_at=run.completed_at,
        evaluated=run.evaluated,
        truncated=run.truncated,
        orders=list(run.orders),
        holds_ended=result.holds_ended,
        marked_overdue=result.marked_overdue,
        erasures_ordered=result.erasures_ordered,
        erasures_retried=result.erasures_retried,
        packages_ready=result.packages_ready,
        packages_deleted=result.packages_deleted,
    )
