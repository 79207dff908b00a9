"""The reveal rule, row by row: every kind of viewer, profile state, relation and context."""

from __future__ import annotations

import itertools

import pytest

from mmgen.profiles.domain.reveal import (
    ANONYMOUS,
    Basis,
    Context,
    Relations,
    Target,
    Viewer,
    decide,
    relations_needed,
)

CREATOR = "11111111-1111-4111-8111-111111111111"
OTHER = "22222222-2222-4222-8222-222222222222"

LISTED = Target(CREATOR, published=True, active=True)
UNPUBLISHED = Target(CREATOR, published=False, active=True)
CLOSED = Target(CREATOR, published=True, active=False)

NONE = Relations()
CONSENT = Relations(consent_granted=True)
SHARED = Relations(shared_projects=frozenset({"p1"}))
BOTH = Relations(consent_granted=True, shared_projects=frozenset({"p1"}))

P = Context.profile
S = Context.search


def v(role: str | None, purpose: str | None = None, subject: str = OTHER) -> Viewer:
    return Viewer(subject if role else None, role, purpose)  # type: ignore[arg-type]


OWNER = Viewer(CREATOR, "creator")
PX = "project_execution"

# (viewer, target, relations, context) -> (visible, reveal, basis, audited)
TABLE = [
    # anonymous and service callers: public part of listed profiles, never sensitive
    (ANONYMOUS, LISTED, BOTH, P, (True, False, None, False)),
    (ANONYMOUS, UNPUBLISHED, BOTH, P, (False, False, None, False)),
    (ANONYMOUS, CLOSED, NONE, P, (False, False, None, False)),
    (ANONYMOUS, LISTED, BOTH, S, (True, False, None, False)),
    (v("service"), LISTED, BOTH, P, (True, False, None, False)),
    (v("service"), UNPUBLISHED, BOTH, P, (False, False, None, False)),
    # the owner: everything of their own, in any state; search shows the public card only
    (OWNER, LISTED, NONE, P, (True, True, Basis.owner, False)),
    (OWNER, UNPUBLISHED, NONE, P, (True, True, Basis.owner, False)),
    (OWNER, CLOSED, NONE, P, (True, True, Basis.owner, False)),
    (OWNER, LISTED, NONE, S, (True, False, None, False)),
    (OWNER, UNPUBLISHED, NONE, S, (False, False, None, False)),
    # clients: consent opens sensitive fields; a shared project does with project_execution
    (v("client"), LISTED, NONE, P, (True, False, None, False)),
    (v("client"), LISTED, CONSENT, P, (True, True, Basis.consent, False)),
    (v("client", "support"), LISTED, CONSENT, P, (True, True, Basis.consent, False)),
    (v("client"), LISTED, SHARED, P, (True, False, None, False)),
    (v("client", PX), LISTED, SHARED, P, (True, True, Basis.shared_project, False)),
    (v("client", "support"), LISTED, SHARED, P, (True, False, None, False)),
    (v("client", PX), LISTED, BOTH, P, (True, True, Basis.shared_project, False)),
    (v("client"), LISTED, BOTH, S, (True, False, None, False)),
    (v("client"), UNPUBLISHED, BOTH, P, (False, False, None, False)),
    (v("client", PX), UNPUBLISHED, SHARED, P, (False, False, None, False)),
    (v("client"), CLOSED, BOTH, P, (False, False, None, False)),
    (v("client"), UNPUBLISHED, NONE, S, (False, False, None, False)),
    # other creators: never through consent, through a shared project for project_execution
    (v("creator"), LISTED, CONSENT, P, (True, False, None, False)),
    (v("creator", PX), LISTED, SHARED, P, (True, True, Basis.shared_project, False)),
    (v("creator"), LISTED, SHARED, P, (True, False, None, False)),
    (v("creator"), UNPUBLISHED, BOTH, P, (False, False, None, False)),
    # staff and compliance: a purpose always; unpublished too; audited; sensitive only shared
    (v("staff"), LISTED, BOTH, P, (False, False, None, False)),
    (v("staff", "support"), LISTED, NONE, P, (True, False, None, True)),
    (v("staff", "support"), UNPUBLISHED, NONE, P, (True, False, None, True)),
    (v("staff", "support"), LISTED, CONSENT, P, (True, False, None, True)),
    (v("staff", PX), LISTED, SHARED, P, (True, True, Basis.shared_project, True)),
    (v("staff", PX), UNPUBLISHED, SHARED, P, (True, True, Basis.shared_project, True)),
    (v("staff", PX), CLOSED, SHARED, P, (True, False, None, True)),
    (v("staff", "support"), LISTED, NONE, S, (True, False, None, True)),
    (v("staff", "support"), UNPUBLISHED, NONE, S, (False, False, None, False)),
    (v("compliance", "legal_compliance"), UNPUBLISHED, BOTH, P, (True, False, None, True)),
    (v("compliance", "legal_compliance"), CLOSED, BOTH, P, (True, False, None, True)),
    (v("compliance"), UNPUBLISHED, NONE, P, (False, False, None, False)),
    # admin: a purpose, audited, published profiles only, never through consent
    (v("admin", "support"), LISTED, CONSENT, P, (True, False, None, True)),
    (v("admin", "support"), UNPUBLISHED, NONE, P, (False, False, None, False)),
    (v("admin"), LISTED, NONE, P, (False, False, None, False)),
]


@pytest.mark.parametrize(("viewer", "target", "relations", "context", "expected"), TABLE)
def test_reveal_rule(
    viewer: Viewer,
    target: Target,
    relations: Relations,
    context: Context,
    expected: tuple[bool, bool, Basis | None, bool],
) -> None:
    decision = decide(viewer, target, relations, context)
    got = (decision.visible, decision.reveal, decision.basis, decision.audited)
    assert got == expected, decision.reason


ROLES = [None, "client", "creator", "staff", "compliance", "admin", "service"]
PURPOSES = [None, "support", PX, "legal_compliance"]
TARGETS = [LISTED, UNPUBLISHED, CLOSED, Target(CREATOR, published=False, active=False)]
RELATIONS = [NONE, CONSENT, SHARED, BOTH]


@pytest.mark.parametrize(("role", "purpose"), list(itertools.product(ROLES, PURPOSES)))
def test_invariants_over_every_combination(role: str | None, purpose: str | None) -> None:
    viewer = v(role, purpose)
    for target, relations in itertools.product(TARGETS, RELATIONS):
        found = decide(viewer, target, relations, S)
        assert not found.reveal, "search never reveals"
        assert found.visible == target.listed, "search lists exactly the listed profiles"
        read = decide(viewer, target, relations, P)
        if read.reveal:
            assert read.visible
            assert role in {"client", "creator", "staff", "compliance", "admin"}
            assert target.active, "a closed account's fields are shown to its owner only"
            if read.basis is Basis.consent:
                assert role == "client" and relations.consent_granted and target.listed
            else:
                assert read.basis is Basis.shared_project
                assert purpose == PX and relations.shared_projects
        if not target.listed and read.visible:
            assert role in {"staff", "compliance"} and purpose
        if role in {"staff", "compliance", "admin"} and read.visible:
            assert read.audited
        # Relations the decision did not ask for cannot change it.
        needed = relations_needed(viewer, target, P)
        stripped = Relations(
            consent_granted=relations.consent_granted and needed.consent,
            shared_projects=relations.shared_projects if needed.shared_projects else frozenset(),
        )
        assert decide(viewer, target, stripped, P) == read


def test_the_owner_is_recognised_by_subject_not_by_role() -> None:
    impostor = Viewer(OTHER, "creator")
    assert not decide(impostor, UNPUBLISHED, NONE, P).visible
    assert decide(Viewer(CREATOR, "creator"), UNPUBLISHED, NONE, P).reveal
