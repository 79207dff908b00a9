"""Who may do what on a project: one pure decision, enforced before any read or write.

    decide(role, relation, purpose, operation) -> Decision(allowed, reason, purpose)

| caller                                    | read | write content | status | the rest |
|-------------------------------------------|------|---------------|--------|----------|
| owner (client)                            | yes  | yes           | yes    | yes      |
| member creator                            | yes  | yes           | no     | no       |
| member staff, purpose execution/support   | yes  | yes           | yes    | no       |
| compliance, purpose legal_compliance      | yes  | no            | no     | no       |
| anyone else (also admin, service tokens)  | no   | no            | no     | no       |

"read" is the project with its requirements, its messages and its files; "the rest" is
editing the project, managing its members and recording disclosures. Staff members need
`X-Purpose` `project_execution` or `support`, compliance `legal_compliance`. Every "no" is
answered as if the project did not exist (404), to members and outsiders alike, so a refusal
never confirms what the caller may not see; `reason` says why, for the audit log only.

A relation counts only with the role it was granted to: a member added as a creator who now
presents a staff token is nobody to the project, and only a client can own one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mmgen.platform.auth.principal import ProcessingPurpose, Role


class Relation(StrEnum):
    """The caller's relation to the project, from the project's own records."""

    owner = "owner"
    member_creator = "member_creator"
    member_staff = "member_staff"
    none = "none"


class Operation(StrEnum):
    """What the caller asks to do with a project."""

    read_project = "read_project"
    read_messages = "read_messages"
    read_files = "read_files"
    post_message = "post_message"
    upload_file = "upload_file"
    update_project = "update_project"
    change_status = "change_status"
    manage_members = "manage_members"
    create_disclosure = "create_disclosure"


READS = frozenset({Operation.read_project, Operation.read_messages, Operation.read_files})
CONTENT_WRITES = frozenset({Operation.post_message, Operation.upload_file})
#: Purposes a staff member may work on a project for.
STAFF_PURPOSES = frozenset({ProcessingPurpose.project_execution, ProcessingPurpose.support})
#: The purpose recorded for the people of a project, who declare none: they execute it.
IMPLIED_PURPOSE = ProcessingPurpose.project_execution


class Reason(StrEnum):
    """Why a decision went the way it did (audit only; never shown to the caller)."""

    owner = "owner"
    member = "member"
    compliance = "compliance"
    not_member = "not_member"
    role_mismatch = "role_mismatch"
    operation_not_allowed = "operation_not_allowed"
    purpose_not_allowed = "purpose_not_allowed"


@dataclass(frozen=True)
class Decision:
    """`allowed`, and if so the purpose to record the access under; else the refusal reason."""

    allowed: bool
    reason: Reason
    purpose: ProcessingPurpose | None = None


#: The role a relation is valid for.
_RELATION_ROLE: dict[Relation, Role] = {
    Relation.owner: Role.client,
    Relation.member_creator: Role.creator,
    Relation.member_staff: Role.staff,
}
#: What each relation may do (staff only under one of `STAFF_PURPOSES`).
_ALLOWED: dict[Relation, frozenset[Operation]] = {
    Relation.owner: frozenset(Operation),
    Relation.member_creator: READS | CONTENT_WRITES,
    Relation.member_staff: READS | CONTENT_WRITES | {Operation.change_status},
    Relation.none: frozenset(),
}


def effective_relation(role: Role, relation: Relation) -> Relation:
    """The relation, if the caller's role is the one it was granted to; else `none`."""
    if relation is Relation.none or _RELATION_ROLE[relation] is not role:
        return Relation.none
    return relation


def decide(
    role: Role,
    relation: Relation,
    purpose: ProcessingPurpose | None,
    operation: Operation,
) -> Decision:
    """The whole access policy of a project (table in the module docstring)."""
    effective = effective_relation(role, relation)
    if effective is Relation.none:
        if role is Role.compliance:
            if purpose is not ProcessingPurpose.legal_compliance:
                return Decision(False, Reason.purpose_not_allowed)
            if operation not in READS:
                return Decision(False, Reason.operation_not_allowed)
            return Decision(True, Reason.compliance, purpose)
        mismatch = relation is not Relation.none
        return Decision(False, Reason.role_mismatch if mismatch else Reason.not_member)
    if effective is Relation.member_staff and purpose not in STAFF_PURPOSES:
        return Decision(False, Reason.purpose_not_allowed)
    if operation not in _ALLOWED[effective]:
        return Decision(False, Reason.operation_not_allowed)
    reason = Reason.owner if effective is Relation.owner else Reason.member
    return Decision(True, reason, purpose or IMPLIED_PURPOSE)


def may_create_project(role: Role) -> bool:
    """Only clients own projects."""
    return role is Role.client
