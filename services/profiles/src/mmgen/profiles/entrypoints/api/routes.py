"""Routes of the profiles service (thin: authorise, call a use case, record its audit, shape).

Every route needs a person's token (`Creator` or `Person`); a refused one (401, 403) becomes
a `profiles.AccessDenied` through the runtime's denial recorder. A profile that exists but is
hidden from the caller answers 404 like a missing one, and that refusal is recorded here. What
a read must leave in the audit trail (`Access`) is recorded before the answer is sent, so no
sensitive value leaves without its access event. `/internal/subjects/{id}/export|footprint`,
`/asyncapi.json`, health and metrics come from the runtime (`build_service_app`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request

from mmgen.events.envelope import Actor
from mmgen.platform import ProblemError
from mmgen.platform.auth import Principal
from mmgen.platform.metrics import route_template
from mmgen.platform.pagination import decode_cursor
from mmgen.profiles.entrypoints.api.dependencies import (
    Container,
    Creator,
    Person,
    ProfileReadPurpose,
    viewer,
)
from mmgen.profiles.entrypoints.api.schemas import (
    OwnProfileOut,
    ProfileCard,
    ProfileIn,
    ProfileOut,
    PublicationOut,
    SearchPageOut,
    SearchParams,
)
from mmgen.profiles.service_layer.audit import Access
from mmgen.profiles.service_layer.profiles import (
    ProfileHiddenError,
    get_own_profile,
    put_profile,
    read_profile,
    set_published,
)
from mmgen.profiles.service_layer.search import search_profiles
from mmgen.runtime.trail import CurrentActor, actor_of

router = APIRouter(prefix="/profiles", tags=["profiles"])


class PageSizeInvalidError(ProblemError):
    status = 422
    slug = "validation-failed"
    title = "Request validation failed"


async def _record(
    service: Container, request: Request, who: Principal, accesses: Sequence[Access]
) -> None:
    actor = actor_of(who)
    route = route_template(request.scope)
    for access in accesses:
        await access.record(service.runtime.trail, actor, route=route)


# --- the creator's own profile -----------------------------------------------------------------


@router.put("/me", name="put_my_profile")
async def put_my_profile(
    body: ProfileIn, who: Creator, actor: CurrentActor, service: Container
) -> OwnProfileOut:
    """Write the caller's whole profile (creators only; a field left out is cleared)."""
    details, sensitive = body.parts()
    own, changed = await put_profile(
        service.repository, actor=actor, details=details, sensitive=sensitive
    )
    if changed:
        # The creator's next search or read sees it (the projection would within its wait).
        await service.projection.refresh(own.creator_id, own.version)
    return OwnProfileOut.of(own)


@router.get("/me", name="get_my_profile")
async def get_my_profile(who: Creator, actor: CurrentActor, service: Container) -> OwnProfileOut:
    """The caller's profile as stored, sensitive details included (read-your-writes)."""
    own = await get_own_profile(service.repository, actor=actor)
    return OwnProfileOut.of(own)


async def _publication(service: Container, actor: Actor, published: bool) -> PublicationOut:
    own, changed = await set_published(service.repository, actor=actor, published=published)
    if changed:
        await service.projection.refresh(own.creator_id, own.version)
    return PublicationOut(user_id=own.creator_id, published=own.published, changed=changed)


@router.post("/me/publish", name="publish_my_profile")
async def publish_my_profile(
    who: Creator, actor: CurrentActor, service: Container
) -> PublicationOut:
    """List the profile for clients and search (`changed` false when it already was)."""
    return await _publication(service, actor, True)


@router.post("/me/unpublish", name="unpublish_my_profile")
async def unpublish_my_profile(
    who: Creator, actor: CurrentActor, service: Container
) -> PublicationOut:
    """Take the profile off search and out of other clients' and creators' sight."""
    return await _publication(service, actor, False)


# --- everyone else -------------------------------------------------------------------------------


@router.get("", name="search_profiles")
async def search(
    params: Annotated[SearchParams, Query()],
    request: Request,
    who: Person,
    purpose: ProfileReadPurpose,
    service: Container,
) -> SearchPageOut:
    """Published profiles of live accounts: filters match exact keywords (accents and case
    ignored), every word of `q` must match; relevance then recency with `q`, else recency.
    Public parts only, whoever asks. Staff, compliance and admin searches are audited."""
    settings = service.settings
    limit = params.limit or settings.page_size_default
    if limit > settings.page_size_max:
        raise PageSizeInvalidError(
            f"invalid fields: limit (at most {settings.page_size_max})",
            extensions={
                "errors": [
                    {
                        "field": "limit",
                        "loc": ["query", "limit"],
                        "msg": f"at most {settings.page_size_max}",
                        "type": "less_than_equal",
                    }
                ]
            },
        )
    page = await search_profiles(
        service.index,
        service.profiles,
        viewer=viewer(who, purpose),
        query=params.query(),
        limit=limit,
        position=decode_cursor(params.cursor) if params.cursor else None,
        limits=service.search_limits,
    )
    await _record(service, request, who, [page.access] if page.access else [])
    return SearchPageOut(
        items=[ProfileCard.of(item) for item in page.items], next_cursor=page.next_cursor
    )


@router.get("/{user_id}", name="get_profile")
async def get_profile(
    user_id: UUID, request: Request, who: Person, purpose: ProfileReadPurpose, service: Container
) -> ProfileOut:
    """A profile under the reveal rule: its public part, and its sensitive fields only for the
    owner, for a client while the creator consents to `profile.sensitive_sharing`, or for
    someone sharing a project with the creator who declares `X-Purpose: project_execution`.
    Each reveal is recorded with the field names shown. Unpublished: the owner, and staff or
    compliance with a purpose (audited); 404 for anyone else."""
    try:
        read = await read_profile(
            service.profiles,
            service.relationships,
            service.repository,
            viewer=viewer(who, purpose),
            creator_id=str(user_id),
        )
    except ProfileHiddenError as hidden:
        await hidden.denial.record(
            service.runtime.trail,
            actor_of(who),
            method=request.method,
            route=route_template(request.scope),
        )
        raise
    await _record(service, request, who, read.accesses)
    return ProfileOut.of(read)
