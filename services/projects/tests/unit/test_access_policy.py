"""The access matrix of issue 11, checked cell by cell for every role, relation, declared
purpose and operation: only the permitted cells are allowed, everything else is refused."""

from __future__ import annotations

import itertools

import pytest

from mmgen.platform.auth.principal import ProcessingPurpose, Role
from mmgen.projects.domain.access import (
    Decision,
    Operation,
    Reason,
    Relation,
    decide,
    may_create_project,
)

P = ProcessingPurpose
READ = {Operation.read_project, Operation.read_messages, Operation.read_files}
WRITE = {Operation.post_message, Operation.upload_file}
STATUS = {Operation.change_status}
MANAGE = {Operation.update_project, Operation.manage_members, Operation.create_disclosure}
assert set(Operation) == READ | WRITE | STATUS | MANAGE


def expected_allowed(role: Role, relation: Relation, purpose: P | None, op: Operation) -> bool:
    """The issue's table, row by row (written independently of the implementation)."""
    if role is Role.client and relation is Relation.owner:
        return True
    if role is Role.creator and relation is Relation.member_creator:
        return op in READ | WRITE
    if role is Role.staff and relation is Relation.member_staff:
        return purpose in (P.project_execution, P.support) and op in READ | WRITE | STATUS
    if role is Role.compliance:
        return purpose is P.legal_compliance and op in READ
    return False


CELLS = list(itertools.product(Role, Relation, [None, *P], Operation))


@pytest.mark.parametrize(
    ("role", "relation", "purpose", "operation"),
    CELLS,
    ids=[f"{r}-{rel}-{p or 'none'}-{op}" for r, rel, p, op in CELLS],
)
def test_every_cell_of_the_matrix(
    role: Role, relation: Relation, purpose: P | None, operation: Operation
) -> None:
    decision = decide(role, relation, purpose, operation)
    assert decision.allowed is expected_allowed(role, relation, purpose, operation)
    if decision.allowed:
        assert decision.purpose is not None
    else:
        assert decision.purpose is None


def test_the_matrix_has_every_cell() -> None:
    assert len(CELLS) == len(Role) * len(Relation) * (len(P) + 1) * len(Operation) == 1296
    allowed = sum(decide(*cell).allowed for cell in CELLS)
    # owner: 9 ops x 6 purposes; creator: 5 x 6; staff: 6 ops x 2 purposes; compliance: 3 x 4
    # relations (the relation does not matter to compliance).
    assert allowed == 9 * 6 + 5 * 6 + 6 * 2 + 3 * 4


@pytest.mark.parametrize(
    ("role", "relation", "purpose", "operation", "expected"),
    [
        # owner: everything, recorded under the implied purpose unless one is declared
        (Role.client, Relation.owner, None, Operation.create_disclosure,
         Decision(True, Reason.owner, P.project_execution)),
        (Role.client, Relation.owner, P.payment_processing, Operation.read_files,
         Decision(True, Reason.owner, P.payment_processing)),
        # member creator: read and write content; status, members, disclosures refused
        (Role.creator, Relation.member_creator, None, Operation.upload_file,
         Decision(True, Reason.member, P.project_execution)),
        (Role.creator, Relation.member_creator, None, Operation.change_status,
         Decision(False, Reason.operation_not_allowed)),
        # member staff: only under project_execution or support; status yes, members no
        (Role.staff, Relation.member_staff, P.support, Operation.change_status,
         Decision(True, Reason.member, P.support)),
        (Role.staff, Relation.member_staff, None, Operation.read_project,
         Decision(False, Reason.purpose_not_allowed)),
        (Role.staff, Relation.member_staff, P.legal_compliance, Operation.read_project,
         Decision(False, Reason.purpose_not_allowed)),
        (Role.staff, Relation.member_staff, P.project_execution, Operation.manage_members,
         Decision(False, Reason.operation_not_allowed)),
        # compliance: read only, legal_compliance only
        (Role.compliance, Relation.none, P.legal_compliance, Operation.read_messages,
         Decision(True, Reason.compliance, P.legal_compliance)),
        (Role.compliance, Relation.none, P.legal_compliance, Operation.post_message,
         Decision(False, Reason.operation_not_allowed)),
        (Role.compliance, Relation.none, P.support, Operation.read_project,
         Decision(False, Reason.purpose_not_allowed)),
        # outsiders, whatever they declare
        (Role.client, Relation.none, None, Operation.read_project,
         Decision(False, Reason.not_member)),
        (Role.staff, Relation.none, P.support, Operation.read_project,
         Decision(False, Reason.not_member)),
        (Role.admin, Relation.none, P.security, Operation.read_project,
         Decision(False, Reason.not_member)),
        # a relation presented with another role counts for nothing
        (Role.staff, Relation.member_creator, P.support, Operation.read_project,
         Decision(False, Reason.role_mismatch)),
        (Role.admin, Relation.owner, P.support, Operation.read_project,
         Decision(False, Reason.role_mismatch)),
    ],
)  # fmt: skip
def test_decisions_and_their_reasons(
    role: Role, relation: Relation, purpose: P | None, operation: Operation, expected: Decision
) -> None:
    assert decide(role, relation, purpose, operation) == expected


@pytest.mark.parametrize("role", list(Role))
def test_only_clients_create_projects(role: Role) -> None:
    assert may_create_project(role) is (role is Role.client)
