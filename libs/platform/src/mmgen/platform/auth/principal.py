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
#: Roles that reach other people's personal data only with a second factor (NIST SP 800-63B
#: AAL2): their tokens must carry "otp" in `amr`.
MFA_REQUIRED_ROLES: frozenset[Role] = frozenset({Role.staff, Role.compliance, Role.admin})
#: `amr` values (RFC 8176) identity puts in its tokens.
AMR_PASSWORD = "pwd"  # noqa: S105 - an RFC 8176 method name, not a password
AMR_OTP = "otp"


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

    @property
    def amr(self) -> tuple[str, ...]:
        """How the subject authenticated (RFC 8176 `amr`); empty when the token does not say."""
        methods = self.claims.get("amr")
        if not isinstance(methods, list | tuple):
            return ()
        return tuple(m for m in methods if isinstance(m, str))

    @property
    def multi_factor(self) -> bool:
        """The token was issued after a password and a one-time code (both in `amr`)."""
        return AMR_PASSWORD in self.amr and AMR_OTP in self.amr

    @property
    def needs_second_factor(self) -> bool:
        """A privileged role signed in with one factor only: refused wherever personal data
        is reachable, allowed only where it enrols a second factor."""
        return self.role in MFA_REQUIRED_ROLES and not self.multi_factor

    def actor(self) -> dict[str, str]:
        """The event envelope's `actor` member for something this principal caused."""
        return {"id": self.subject_id, "role": str(self.role)}
