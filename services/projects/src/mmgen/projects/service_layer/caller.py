"""Who is asking, for what, through which route: what every use case receives first."""

from __future__ import annotations

from dataclasses import dataclass

from mmgen.events.envelope import Actor
from mmgen.platform.auth.principal import Principal, ProcessingPurpose, Role


@dataclass(frozen=True)
class Caller:
    """A verified caller, their declared purpose, and the route template of the request
    (`/projects/{project_id}/messages`): refusals and reads are audited under it."""

    actor_id: str
    role: Role
    purpose: ProcessingPurpose | None
    route: str

    @classmethod
    def of(cls, principal: Principal, purpose: ProcessingPurpose | None, route: str) -> Caller:
        return cls(principal.subject_id, principal.role, purpose, route)

    def actor(self) -> Actor:
        return Actor(id=self.actor_id, role=str(self.role))

    @property
    def key_owner(self) -> str:
        """The key owner of what this caller writes about themselves (messages, files)."""
        return f"subject:{self.actor_id}"
