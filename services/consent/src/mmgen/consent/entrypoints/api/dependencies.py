"""Typed dependencies of the consent routes: the wired service, callers, purposes, GPC,
evidence."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mmgen.consent.bootstrap import Consent
from mmgen.consent.domain.events import ConsentEvidence
from mmgen.platform.auth import Principal, ProcessingPurpose, accepts_purposes, require_roles
from mmgen.platform.auth.dependencies import get_principal
from mmgen.platform.clients import client_address

HUMAN_ROLES = ("client", "creator", "staff", "compliance", "admin")

_optional_bearer = HTTPBearer(auto_error=False, bearerFormat="JWT")


def consent_of(request: Request) -> Consent:
    container: Consent = request.app.state.consent
    return container


Container = Annotated[Consent, Depends(consent_of)]
Person = Annotated[Principal, Depends(require_roles(*HUMAN_ROLES))]
StaffOrCompliance = Annotated[Principal, Depends(require_roles("staff", "compliance"))]
Admin = Annotated[Principal, Depends(require_roles("admin"))]
#: Why staff or compliance may read a subject's consent decisions: to answer the subject
#: (support), to prove what was agreed (legal_compliance), to investigate misuse (security).
ConsentReadPurpose = Annotated[
    ProcessingPurpose | None,
    Depends(
        accepts_purposes(
            ProcessingPurpose.support,
            ProcessingPurpose.legal_compliance,
            ProcessingPurpose.security,
        )
    ),
]


async def optional_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_optional_bearer)],
) -> Principal | None:
    """The caller if a bearer token is sent (a bad one is still a 401), else None."""
    if credentials is None:
        return None
    return await get_principal(request, credentials)


MaybePrincipal = Annotated[Principal | None, Depends(optional_principal)]


def gpc_signal(
    sec_gpc: Annotated[
        str | None,
        Header(alias="Sec-GPC", description="Global Privacy Control: `1` refuses sale/sharing"),
    ] = None,
) -> bool:
    """True when the request carries `Sec-GPC: 1` (any other value means no signal)."""
    return sec_gpc is not None and sec_gpc.strip() == "1"


Gpc = Annotated[bool, Depends(gpc_signal)]


def evidence_of(request: Request) -> ConsentEvidence:
    """The request's context kept (encrypted) as evidence of a decision."""
    agent = request.headers.get("user-agent")
    return ConsentEvidence(
        user_agent=agent[:512] if agent else None,
        # The gateway's X-Forwarded-For only from CONSENT_TRUSTED_PROXIES.
        client_ip=client_address(request) if request.client else None,
    )
