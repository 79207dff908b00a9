"""The reveal rule: who sees a profile, and who sees its sensitive fields — one pure function.

`decide(viewer, target, relations, context)` is the whole rule; every read path calls it, and
a table-driven test covers it. In words:

- Nobody sees anything of a profile in search beyond its public part, and search lists only
  published profiles of live accounts. Anonymous callers and service tokens never see
  sensitive fields.
- The owner sees their own profile, published or not, with its sensitive fields.
- A published profile of a live account is visible to everyone (the routes still ask every
  caller for a token: the rule does not depend on it). Its sensitive fields are revealed
  * to a **client** while the creator's `profile.sensitive_sharing` consent is granted, or
  * to anyone who shares a project with the creator (the project's owner or another member),
    declaring the purpose `project_execution`.
- An unpublished profile, or one of a closed account, is visible only to the owner and to
  staff or compliance declaring a purpose (their reads are audited). Staff see its sensitive
  fields only under the shared-project rule, and not once the account is closed.
- Staff, compliance and admin reads always declare a purpose and are always audited.

The rule has no I/O: `relations_needed` says which facts (consent, shared projects) could
change the answer, so callers read only those.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

ViewerRole = Literal["client", "creator", "staff", "compliance", "admin", "service"]
PROJECT_EXECUTION = "project_execution"
#: Roles that see unpublished profiles (with a declared purpose).
OVERSIGHT_ROLES = frozenset({"staff", "compliance"})
#: Roles whose every read is audited (they must declare a purpose).
AUDITED_ROLES = frozenset({"staff", "compliance", "admin"})
#: Roles that see a published profile's public part.
PERSON_ROLES = frozenset({"client", "creator", "staff", "compliance", "admin"})


class Context(StrEnum):
    profile = "profile"  # one profile read by id
    search = "search"  # a search result


class Basis(StrEnum):
    """Why sensitive fields are revealed."""

    owner = "owner"
    consent = "consent"
    shared_project = "shared_project"


@dataclass(frozen=True)
class Viewer:
    """The caller: `subject_id` None means anonymous; `purpose` as declared (X-Purpose)."""

    subject_id: str | None
    role: ViewerRole | None
    purpose: str | None = None

    @property
    def anonymous(self) -> bool:
        return self.subject_id is None or self.role is None


ANONYMOUS = Viewer(None, None)


@dataclass(frozen=True)
class Target:
    """The profile looked at: whose, published or not, its account live or closed."""

    creator_id: str
    published: bool
    active: bool = True

    @property
    def listed(self) -> bool:
        return self.published and self.active


@dataclass(frozen=True)
class Relations:
    """What the service learnt from other services' events about the creator and the viewer."""

    consent_granted: bool = False
    shared_projects: frozenset[str] = frozenset()


NO_RELATIONS = Relations()


@dataclass(frozen=True)
class Needed:
    """Which relations could change the decision for this viewer (the rest need not be read)."""

    consent: bool
    shared_projects: bool


@dataclass(frozen=True)
class Decision:
    visible: bool
    reveal: bool = False
    basis: Basis | None = None
    #: The read must be recorded as an access event (staff, compliance, admin).
    audited: bool = False
    #: Why the profile is not visible or its sensitive fields not revealed (for tests, logs).
    reason: str = ""


def _is_owner(viewer: Viewer, target: Target) -> bool:
    return not viewer.anonymous and viewer.subject_id == target.creator_id


def relations_needed(viewer: Viewer, target: Target, context: Context) -> Needed:
    """The relations `decide` would look at for this viewer and profile."""
    if (
        context is Context.search
        or viewer.anonymous
        or viewer.role not in PERSON_ROLES
        or _is_owner(viewer, target)
        or not target.active
    ):
        return Needed(consent=False, shared_projects=False)
    return Needed(
        consent=viewer.role == "client",
        shared_projects=viewer.purpose == PROJECT_EXECUTION,
    )


def decide(viewer: Viewer, target: Target, relations: Relations, context: Context) -> Decision:
    """The whole rule (see the module docstring)."""
    if context is Context.search:
        if not target.listed:
            return Decision(False, reason="search lists published profiles of live accounts")
        return Decision(True, audited=viewer.role in AUDITED_ROLES, reason="search: public only")
    if viewer.anonymous or viewer.role not in PERSON_ROLES:
        if target.listed:
            return Decision(True, reason="anonymous callers see the public part only")
        return Decision(False, reason="not published")
    if _is_owner(viewer, target):
        return Decision(True, reveal=True, basis=Basis.owner, reason="the owner")
    audited = viewer.role in AUDITED_ROLES
    if audited and not viewer.purpose:
        return Decision(False, reason="staff, compliance and admin reads declare a purpose")
    oversight = viewer.role in OVERSIGHT_ROLES
    if not target.listed and not oversight:
        return Decision(False, reason="not published")
    if not target.active:
        return Decision(True, audited=audited, reason="closed account: public part only")
    if viewer.purpose == PROJECT_EXECUTION and relations.shared_projects:
        return Decision(
            True,
            reveal=True,
            basis=Basis.shared_project,
            audited=audited,
            reason="a project shared with the creator, for project_execution",
        )
    if viewer.role == "client" and target.listed and relations.consent_granted:
        return Decision(
            True,
            reveal=True,
            basis=Basis.consent,
            audited=audited,
            reason="the creator consents to sharing sensitive fields with clients",
        )
    return Decision(True, audited=audited, reason="no consent and no shared project")
