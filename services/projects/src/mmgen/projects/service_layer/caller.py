"""Who is asking, for what, through which route: what every use case receives first."""

from __future__ import annotations

from dataclasses import dataclass

from mmgen.events.envelope import Actor
from mmgen.platform.auth.principal import Principal, ProcessingPurpose, Role


@dataclass(frozen=True)
class Caller:
    """A verified caller, their declared purpose, and the route template and method of the
    request (`POST /projects/{project_id}/messages`): refusals and reads are audited under
    them — the template, never the raw path."""

    actor_id: str
    role: Role
    purpose: ProcessingPurpose | None
    route: str
    method: str = "GET"

    @classmethod
    def of(
        cls,
        principal: Principal,
        purpose: ProcessingPurpose | None,
        route: str,
        method: str = "GET",
    ) -> Caller:
        return cls(principal.subject_id, principal.role, purpose, route, method)

    def actor(self) -> Actor:
        return Actor(id=self.actor_id, role=str(self.role))

    @property
    def key_owner(self) -> str:
        """The key owner of what this caller writes about themselves (messages, files)."""
        return f"subject:{self.actor_id}"
