"""The activity projection from audit entries, policies, and what an evaluation orders."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mmgen.retention.domain.activity import (
    SubjectActivity,
    apply_to_resource,
    apply_to_subject,
    fold_batch,
    keys_touched,
)
from mmgen.retention.domain.contract import AuditRecord
from mmgen.retention.domain.errors import PolicyInvalidError
from mmgen.retention.domain.evaluation import evaluate, evaluate_resource, evaluate_subject
from mmgen.retention.domain.events import HeldCategoryData
from mmgen.retention.domain.policies import (
    DEFAULT_POLICIES,
    SUBJECT_INACTIVE,
    RetentionPolicy,
)

T0 = datetime(2024, 1, 31, 12, tzinfo=UTC)
ALICE = "0195f3a0-0000-7000-8000-00000000a11c"
STAFF = "0195f3a0-0000-7000-8000-0000000057af"
PROJECT = "0195f3a0-0000-7000-8000-0000000000p1"


def entry(seq: int, event_type: str, action: str, **fields: Any) -> AuditRecord:
    return AuditRecord(
        seq=seq,
        event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"e{seq}")),
        producer=event_type.split(".")[0],
        event_type=event_type,
        action=action,
        occurred_at=fields.pop("at", T0 + timedelta(days=seq)),
        **fields,
    )


LOG = [
    entry(0, "identity.UserRegistered", "create", subject_id=ALICE, actor_id=ALICE,
          actor_role="creator", categories=["account", "business", "contact"],
          resource={"type": "user", "id": ALICE}),
    entry(1, "projects.ProjectCreated", "create", subject_id=STAFF, actor_id=STAFF,
          actor_role="client", categories=["project"], resource={"type": "project", "id": PROJECT}),
    entry(2, "projects.MessagePosted", "create", subject_id=ALICE, actor_id=ALICE,
          actor_role="creator", categories=["communication"],
          resource={"type": "message", "id": "m1"}),
    entry(3, "identity.UserRead", "read", subject_id=ALICE, actor_id=STAFF, actor_role="staff",
          purpose="support", categories=["contact"], resource={"type": "user", "id": ALICE}),
    entry(4, "projects.AccessDenied", "deny", subject_id=ALICE, actor_id=ALICE,
          actor_role="creator", resource={"type": "endpoint", "id": "x"}),
    entry(5, "projects.DataDisclosed", "share", subject_id=ALICE, actor_id=STAFF,
          actor_role="client", purpose="payment_processing", categories=["contact", "payment"],
          resource={"type": "disclosure", "id": "d1"}),
    entry(6, "projects.ProjectCompleted", "update", subject_id=None, actor_id=STAFF,
          actor_role="client", resource={"type": "project", "id": PROJECT}),
    entry(7, "consent.ConsentGranted", "consent", subject_id=ALICE, actor_id=None,
          actor_role=None, categories=["consent", "usage"],
          resource={"type": "consent", "id": "c"}),
]  # fmt: skip


def _fold(entries: list[AuditRecord]) -> tuple[dict[str, Any], dict[str, Any]]:
    subjects: dict[str, Any] = {}
    resources: dict[str, Any] = {}
    batch = fold_batch(entries, subjects, resources)
    subjects.update(batch.subjects)
    resources.update(batch.resources)
    return subjects, resources


def test_subject_activity_counts_only_own_non_refused_actions() -> None:
    subjects, _ = _fold(LOG)
    alice: SubjectActivity = subjects[ALICE]
    assert alice.first_seen_at == T0
    assert alice.last_activity_at == T0 + timedelta(days=2)  # the message; not the read, not deny
    assert alice.last_seen_at == T0 + timedelta(days=7)
    assert alice.categories == {
        "identity": ("account", "business", "contact"),
        "projects": ("communication", "contact", "payment"),
        "consent": ("consent", "usage"),
    }
    assert alice.triggers["identity.UserRegistered"] == T0
    assert [d.purpose for d in alice.disclosures] == ["payment_processing"]
    assert subjects[STAFF].last_activity_at == T0 + timedelta(days=6)


def test_resource_activity_keeps_trigger_times_of_projects_only() -> None:
    _, resources = _fold(LOG)
    assert set(resources) == {f"project:{PROJECT}"}
    project = resources[f"project:{PROJECT}"]
    assert project.triggers["projects.ProjectCompleted"] == T0 + timedelta(days=6)
    assert keys_touched(LOG)[1] == {f"project:{PROJECT}"}


def test_folding_is_idempotent_and_erasure_clears_a_services_categories() -> None:
    subjects, resources = _fold(LOG)
    again = fold_batch(LOG, subjects, resources)
    assert again.subjects == {} and again.resources == {}
    erased = entry(8, "projects.SubjectErased", "erase", subject_id=ALICE, actor_id=None,
                   resource={"type": "subject", "id": ALICE})  # fmt: skip
    alice = apply_to_subject(subjects[ALICE], ALICE, erased)
    assert "projects" not in alice.categories
    assert alice.erased_by == {"projects": T0 + timedelta(days=8)}
    assert apply_to_subject(alice, ALICE, erased) is alice
    assert SubjectActivity.of(alice.to_doc()) == alice
    anonymized = entry(9, "projects.ResourceAnonymized", "erase",
                       resource={"type": "project", "id": PROJECT})  # fmt: skip
    project = apply_to_resource(resources[f"project:{PROJECT}"], anonymized)
    assert project.anonymized_at == T0 + timedelta(days=9)


# --- policies --------------------------------------------------------------------------------


def test_policy_validation() -> None:
    with pytest.raises(PolicyInvalidError, match="category"):
        RetentionPolicy.of(
            category="gossip", trigger_event="x.Y", period="P1Y", action="erase", legal_basis="b"
        )
    with pytest.raises(PolicyInvalidError, match="trigger_event"):
        RetentionPolicy.of(
            category="usage", trigger_event="not an event", period="P1Y", action="erase",
            legal_basis="b",
        )  # fmt: skip
    with pytest.raises(PolicyInvalidError, match="no resource"):
        RetentionPolicy.of(
            category="project", trigger_event=SUBJECT_INACTIVE, period="P1Y",
            action="anonymize", legal_basis="b",
        )  # fmt: skip
    with pytest.raises(PolicyInvalidError, match="action"):
        RetentionPolicy.of(
            category="usage", trigger_event="x.Y", period="P1Y", action="sell", legal_basis="b"
        )
    with pytest.raises(PolicyInvalidError, match="legal basis"):
        RetentionPolicy.of(
            category="usage", trigger_event="x.Y", period="P1Y", action="erase", legal_basis=" "
        )
    same = RetentionPolicy.of(
        category="usage", trigger_event=SUBJECT_INACTIVE, period="P2Y", action="erase",
        legal_basis="other",
    )  # fmt: skip
    assert same.policy_id == DEFAULT_POLICIES[-1].policy_id  # redefining replaces


def _alice(**changes: Any) -> SubjectActivity:
    subjects, _ = _fold(LOG)
    alice: SubjectActivity = subjects[ALICE]
    return replace(alice, **changes)


def test_inactive_usage_erases_usage_only() -> None:
    alice = _alice()
    last = T0 + timedelta(days=2)
    assert evaluate_subject(DEFAULT_POLICIES, alice, [], set(), last + timedelta(days=390)) is None
    now = datetime(2025, 3, 5, tzinfo=UTC)  # 13 months after 2 Feb 2024 have passed
    order = evaluate_subject(DEFAULT_POLICIES, alice, [], set(), now)
    assert order is not None
    assert order.kind == "erase_subject"
    assert order.trigger_event == SUBJECT_INACTIVE
    assert order.triggered_at == last
    assert order.due_at == datetime(2025, 3, 2, 12, tzinfo=UTC)
    assert "usage" not in order.categories_held
    assert {"account", "contact", "consent", "payment"} <= set(order.categories_held)
    assert "P13M" in order.reason
    # Issued once per trigger occurrence.
    assert evaluate_subject(DEFAULT_POLICIES, alice, [], set(order.keys), now) is None


def test_inactive_account_erases_the_whole_subject_except_holds() -> None:
    hold = HeldCategoryData(category="payment", hold_id="h", legal_basis="tax", until=None)
    now = datetime(2027, 2, 3, tzinfo=UTC)  # three years after the last activity
    order = evaluate_subject(DEFAULT_POLICIES, _alice(), [hold], set(), now)
    assert order is not None
    assert order.categories_held == ("payment",)
    assert order.holds == (hold,)
    assert len(order.keys) == 2  # the usage rule is satisfied by the same order


def test_closed_account_is_erased_after_the_grace_period() -> None:
    closed_at = T0 + timedelta(days=40)
    alice = _alice(triggers={**_alice().triggers, "identity.AccountClosed": closed_at})
    assert (
        evaluate_subject(DEFAULT_POLICIES, alice, [], set(), closed_at + timedelta(days=29)) is None
    )
    order = evaluate_subject(DEFAULT_POLICIES, alice, [], set(), closed_at + timedelta(days=30))
    assert order is not None and order.categories_held == ()
    assert order.trigger_event == "identity.AccountClosed"


def test_completed_project_is_anonymised_after_three_years() -> None:
    _, resources = _fold(LOG)
    project = resources[f"project:{PROJECT}"]
    completed = T0 + timedelta(days=6)
    assert (
        evaluate_resource(DEFAULT_POLICIES, project, set(), completed + timedelta(days=1000))
        is None
    )
    order = evaluate_resource(DEFAULT_POLICIES, project, set(), datetime(2027, 2, 7, tzinfo=UTC))
    assert order is not None
    assert order.resource == ("project", PROJECT)
    assert order.due_at == datetime(2027, 2, 6, 12, tzinfo=UTC)
    anonymised = apply_to_resource(
        project,
        entry(
            9, "projects.ResourceAnonymized", "erase", resource={"type": "project", "id": PROJECT}
        ),
    )
    assert (
        evaluate_resource(DEFAULT_POLICIES, anonymised, set(), datetime(2030, 1, 1, tzinfo=UTC))
        is None
    )


def test_evaluation_excludes_subjects_with_requests_and_bounds_orders() -> None:
    subjects, resources = _fold(LOG)
    now = datetime(2030, 1, 1, tzinfo=UTC)
    result = evaluate(
        DEFAULT_POLICIES,
        subjects=subjects.values(),
        resources=resources.values(),
        holds={},
        issued=set(),
        excluded_subjects={ALICE},
        now=now,
        max_orders=10,
    )
    assert [o.target for o in result.orders] == [STAFF, f"project:{PROJECT}"]
    assert result.evaluated == 3 and not result.truncated
    bounded = evaluate(
        DEFAULT_POLICIES,
        subjects=subjects.values(),
        resources=resources.values(),
        holds={},
        issued=set(),
        excluded_subjects=set(),
        now=now,
        max_orders=1,
    )
    assert len(bounded.orders) == 1 and bounded.truncated
