"""Policy evaluation: given the activity projection, the holds and now, which orders to issue.

Pure: the service layer supplies the candidates (read by bounded, indexed queries), the
policies, the active holds per subject, what was ordered before, and the time. Each order says
why (policy, trigger and when it happened, when it fell due), so a run can be recorded as an
event listing what it ordered and why.

Rules (see ``policies`` for the meaning of a policy):

- a subject erase policy is due when ``period.after(trigger time) <= now``, where the trigger
  time is the subject's last own activity for ``subject.inactive`` or the last time the
  trigger event happened to them; a subject with an open or verified erasure request is
  left to that request;
- all erase policies due for one subject make one order: for ``account`` the whole subject,
  otherwise only the due categories (every other category is held); categories under an
  active legal hold are always held;
- a policy is applied once per trigger occurrence: an order remembered as
  ``(policy_id, target, trigger time)`` is not issued again, while a later occurrence (new
  activity, then inactivity again) makes a new one;
- an anonymise policy is due for a resource when the trigger event touched it and the period
  has passed since; an anonymised resource is skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from mmgen.events.registry import KNOWN_CATEGORIES
from mmgen.retention.domain.activity import ResourceActivity, SubjectActivity
from mmgen.retention.domain.events import HeldCategoryData
from mmgen.retention.domain.policies import SUBJECT_INACTIVE, PolicyAction, RetentionPolicy

OrderKind = Literal["erase_subject", "anonymize_resource"]
IssuedKey = tuple[str, str, datetime]


@dataclass(frozen=True, slots=True)
class PlannedOrder:
    kind: OrderKind
    policy_id: str
    target: str
    trigger_event: str
    triggered_at: datetime
    due_at: datetime
    reason: str
    categories_held: tuple[str, ...] = ()
    holds: tuple[HeldCategoryData, ...] = ()
    resource: tuple[str, str] | None = None
    also_satisfies: tuple[str, ...] = ()

    @property
    def keys(self) -> list[IssuedKey]:
        """What marks this order as issued (one per policy it satisfies)."""
        return [
            (policy_id, self.target, self.triggered_at)
            for policy_id in (self.policy_id, *self.also_satisfies)
        ]


@dataclass(frozen=True, slots=True)
class Evaluation:
    orders: tuple[PlannedOrder, ...]
    evaluated: int
    truncated: bool


def _trigger_time(policy: RetentionPolicy, subject: SubjectActivity) -> datetime | None:
    if policy.trigger_event == SUBJECT_INACTIVE:
        return subject.activity_at
    return subject.triggers.get(policy.trigger_event)


def _applies(policy: RetentionPolicy, subject: SubjectActivity) -> bool:
    return policy.erases_whole_subject or policy.category in subject.all_categories


def evaluate_subject(
    policies: Sequence[RetentionPolicy],
    subject: SubjectActivity,
    holds: Sequence[HeldCategoryData],
    issued: frozenset[IssuedKey] | set[IssuedKey],
    now: datetime,
) -> PlannedOrder | None:
    """The one erase order due for a subject now, or None."""
    due: list[tuple[datetime, RetentionPolicy, datetime]] = []
    for policy in policies:
        if policy.action is not PolicyAction.erase or not _applies(policy, subject):
            continue
        triggered = _trigger_time(policy, subject)
        if triggered is None:
            continue
        due_at = policy.period.after(triggered)
        if due_at > now or (policy.policy_id, subject.subject_id, triggered) in issued:
            continue
        due.append((due_at, policy, triggered))
    if not due:
        return None
    due.sort(key=lambda item: (item[0], item[1].policy_id))
    due_at, first, triggered = due[0]
    held_by_holds = {h.category for h in holds}
    if any(policy.erases_whole_subject for _, policy, _ in due):
        held = held_by_holds
    else:
        due_categories = {policy.category for _, policy, _ in due}
        held = (set(KNOWN_CATEGORIES) | subject.all_categories) - due_categories | held_by_holds
    reasons = "; ".join(
        f"{policy.category}: {policy.trigger_event} at {when.isoformat()} + {policy.period} "
        f"= {policy.period.after(when).isoformat()} has passed ({policy.legal_basis})"
        for _, policy, when in due
    )
    return PlannedOrder(
        kind="erase_subject",
        policy_id=first.policy_id,
        target=subject.subject_id,
        trigger_event=first.trigger_event,
        triggered_at=triggered,
        due_at=due_at,
        reason=reasons,
        categories_held=tuple(sorted(held)),
        holds=tuple(holds),
        also_satisfies=tuple(p.policy_id for _, p, _ in due[1:] if p.policy_id != first.policy_id),
    )


def evaluate_resource(
    policies: Sequence[RetentionPolicy],
    resource: ResourceActivity,
    issued: frozenset[IssuedKey] | set[IssuedKey],
    now: datetime,
) -> PlannedOrder | None:
    """The anonymise order due for a resource now, or None (the earliest due policy wins)."""
    if resource.anonymized_at is not None:
        return None
    best: PlannedOrder | None = None
    for policy in policies:
        if policy.action is not PolicyAction.anonymize:
            continue
        triggered = resource.triggers.get(policy.trigger_event)
        if triggered is None:
            continue
        due_at = policy.period.after(triggered)
        if due_at > now or (policy.policy_id, resource.key, triggered) in issued:
            continue
        order = PlannedOrder(
            kind="anonymize_resource",
            policy_id=policy.policy_id,
            target=resource.key,
            trigger_event=policy.trigger_event,
            triggered_at=triggered,
            due_at=due_at,
            reason=(
                f"{policy.category}: {policy.trigger_event} at {triggered.isoformat()} + "
                f"{policy.period} = {due_at.isoformat()} has passed ({policy.legal_basis})"
            ),
            resource=(resource.resource_type, resource.resource_id),
        )
        if best is None or (order.due_at, order.policy_id) < (best.due_at, best.policy_id):
            best = order
    return best


def evaluate(
    policies: Sequence[RetentionPolicy],
    *,
    subjects: Iterable[SubjectActivity],
    resources: Iterable[ResourceActivity],
    holds: Mapping[str, Sequence[HeldCategoryData]],
    issued: frozenset[IssuedKey] | set[IssuedKey],
    excluded_subjects: frozenset[str] | set[str],
    now: datetime,
    max_orders: int,
) -> Evaluation:
    """Every order due now over the candidates, at most ``max_orders`` (the rest next run)."""
    orders: list[PlannedOrder] = []
    evaluated = 0
    truncated = False
    for subject in subjects:
        evaluated += 1
        if subject.subject_id in excluded_subjects:
            continue
        order = evaluate_subject(policies, subject, holds.get(subject.subject_id, ()), issued, now)
        if order is not None:
            if len(orders) >= max_orders:
                truncated = True
                break
            orders.append(order)
    for resource in resources:
        if truncated:
            break
        evaluated += 1
        order = evaluate_resource(policies, resource, issued, now)
        if order is not None:
            if len(orders) >= max_orders:
                truncated = True
                break
            orders.append(order)
    return Evaluation(tuple(orders), evaluated, truncated)
