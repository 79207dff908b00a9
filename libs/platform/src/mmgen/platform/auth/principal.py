"""Who is calling: roles, declared processing purposes and the verified principal."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any


class Role(StrEnum):
    client = "client"
    creator = "creator"
    staff = "staff"
    compliance = "compliance"
    admin = "admin"
    #: Service tokens (`sub` = the calling service's name), accepted on `/internal/` routes.
    service = "service"


class ProcessingPurpose(StrEnum):
    """The purposes a staff member may declare in `X-Purpose` (the privacy policy's list)."""

    project_execution = "project_execution"
    support = "support"
    legal_compliance = "legal_compliance"
    payment_processing = "payment_processing"
    security = "security"


#: Roles whose reads of personal data must declare a purpose.
PURPOSE_REQUIRED_ROLES: frozenset[Role] = frozenset({Role.staff, Role.compliance, Role.admin})
#: Roles a person can hold (everything but service tokens).
HUMAN_ROLES: frozenset[Role] = frozenset(Role) - {Role.service}


@dataclass(frozen=True)
class Principal:
    """A caller whose token was verified: subject id, role and the token's claims."""

    subject_id: str
    role: Role
    claims: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "claims", MappingProxyType(dict(self.claims)))

    @property
    def is_service(self) -> bool:
        return self.role is Role.service

    @property
    def token_id(self) -> str | None:
        jti = self.claims.get("jti")
        return jti if isinstance(jti, str) else None

    def actor(self) -> dict[str, str]:
        """The event envelope's `actor` member for something this principal caused."""
        return {"id": self.subject_id, "role": str(self.role)}
