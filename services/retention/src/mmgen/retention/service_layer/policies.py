"""Retention policies and policy runs.

`RetentionPolicies` defines policies (each definition is an event, and replaces an earlier
policy of the same category, trigger and action) and seeds the documented defaults on first
start. `RetentionRuns` evaluates them: per policy it reads the targets whose trigger is old
enough from the activity projection's trigger index, a bounded page from a cursor kept per
policy, evaluates each target against every policy (one order per subject), sends each order
once, and records the run as one event listing what it ordered and why.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from mmgen.events.envelope import Actor
from mmgen.events.ids import new_event_id
from mmgen.events.mapper import NewEvent
from mmgen.events.repository import EventSourcedRepository
from mmgen.retention.domain.evaluation import PlannedOrder, evaluate_resource, evaluate_subject
from mmgen.retention.domain.events import OrderRecord, RetentionPolicyDefined, RetentionRunCompleted
from mmgen.retention.domain.holds import held_categories
from mmgen.retention.domain.policies import DEFAULT_POLICIES, RetentionPolicy
from mmgen.retention.domain.records import CandidateKind, Command, IssuedOrder
from mmgen.retention.service_layer.ports import (
    ActivityStore,
    Clock,
    CommandPublisher,
    HoldViews,
    OrderLog,
    PolicyStore,
    RequestViews,
)

log = logging.getLogger(__name__)
_ORDER_NAMESPACE = uuid.UUID("0c6f8f59-7d0a-4d8e-9b4a-1f5e2c7a3d11")


class RetentionPolicies:
    def __init__(
        self, *, repository: EventSourcedRepository, store: PolicyStore, clock: Clock
    ) -> None:
        self.repository = repository
        self.store = store
        self.clock = clock

    async def define(
        self,
        *,
        category: str,
        trigger_event: str,
        period: str,
        action: str,
        legal_basis: str,
        by: Actor | None,
    ) -> RetentionPolicy:
        """Validate, record and store a policy (`PeriodInvalidError`/`PolicyInvalidError`)."""
        policy = RetentionPolicy.of(
            category=category,
            trigger_event=trigger_event,
            period=period,
            action=action,
            legal_basis=legal_basis,
        )
        stream = f"retention-policy:{policy.policy_id}"
        version = await self.repository.store.stream_version(stream)
        event = RetentionPolicyDefined(
            policy_id=policy.policy_id,
            category=policy.category,
            trigger_event=policy.trigger_event,
            period=str(policy.period),
            action=policy.action.value,
            legal_basis=policy.legal_basis,
            defined_by=None if by is None else by.id,
            defined_at=self.clock.now(),
        )
        await self.repository.append(
            stream, version, [NewEvent(event, actor=by, resource_id=policy.policy_id)]
        )
        await self.store.put(policy)
        return policy

    async def all(self) -> list[RetentionPolicy]:
        return await self.store.all()

    async def ensure_defaults(self) -> int:
        """Seed the documented defaults when no policy exists yet; returns how many."""
        if await self.store.all():
            return 0
        for policy in DEFAULT_POLICIES:
            await self.define(
                category=policy.category,
                trigger_event=policy.trigger_event,
                period=str(policy.period),
                action=policy.action.value,
                legal_basis=policy.legal_basis,
                by=None,
            )
        return len(DEFAULT_POLICIES)


def _command(order: PlannedOrder, run_id: str) -> Command:
    command_id = str(uuid.uuid5(_ORDER_NAMESPACE, f"{run_id}|{order.target}"))
    request_id = f"run-{run_id}"
    if order.kind == "erase_subject":
        return Command(
            event_type="retention.EraseSubject",
            command_id=command_id,
            subject_id=order.target,
            data={
                "request_id": request_id,
                "subject_id": order.target,
                "categories_held": list(order.categories_held),
            },
            correlation_id=request_id,
        )
    assert order.resource is not None
    return Command(
        event_type="retention.AnonymizeResource",
        command_id=command_id,
        subject_id=None,
        data={
            "request_id": request_id,
            "resource": {"type": order.resource[0], "id": order.resource[1]},
        },
        correlation_id=request_id,
    )


class RetentionRuns:
    def __init__(
        self,
        *,
        repository: EventSourcedRepository,
        policies: PolicyStore,
        activity: ActivityStore,
        holds: HoldViews,
        requests: RequestViews,
        orders: OrderLog,
        publisher: CommandPublisher,
        clock: Clock,
        max_orders: int = 500,
        max_candidates: int = 1000,
    ) -> None:
        self.repository = repository
        self.policies = policies
        self.activity = activity
        self.holds = holds
        self.requests = requests
        self.orders = orders
        self.publisher = publisher
        self.clock = clock
        self.max_orders = max_orders
        self.max_candidates = max_candidates

    async def _plan_policy(
        self,
        policy: RetentionPolicy,
        policies: Sequence[RetentionPolicy],
        planned: dict[str, PlannedOrder],
    ) -> tuple[int, bool]:
        now = self.clock.now()
        kind: CandidateKind = "subject" if policy.targets_subjects else "resource"
        cursor_name = f"policy:{policy.policy_id}"
        after = await self.activity.cursor(cursor_name)
        candidates = await self.activity.candidates(
            kind,
            policy.trigger_event,
            until=policy.period.before(now),
            after=after,
            limit=self.max_candidates,
        )
        if not candidates:
            return 0, False
        subjects = [c.subject.subject_id for c in candidates if c.subject is not None]
        holds = await self.holds.of_subjects(subjects) if subjects else {}
        excluded = await self.requests.erasure_subjects(subjects) if subjects else set()
        evaluated, position, truncated = 0, after, False
        for candidate in candidates:
            if len(planned) >= self.max_orders:
                truncated = True
                break
            evaluated += 1
            position = candidate.key
            order: PlannedOrder | None = None
            if candidate.subject is not None:
                subject = candidate.subject
                if subject.subject_id in excluded or subject.subject_id in planned:
                    continue
                active = held_categories(holds.get(subject.subject_id, []), now)
                order = evaluate_subject(policies, subject, active, set(), now)
            elif candidate.resource is not None and candidate.resource.key not in planned:
                order = evaluate_resource(policies, candidate.resource, set(), now)
            if order is None:
                continue
            done = await self.orders.issued(order.keys)
            if done and candidate.subject is not None:
                # Part of it was ordered before (another policy, same trigger): order the rest.
                active = held_categories(holds.get(candidate.subject.subject_id, []), now)
                order = evaluate_subject(policies, candidate.subject, active, done, now)
            elif done:
                order = None
            if order is not None:
                planned[order.target] = order
        await self.activity.set_cursor(cursor_name, position)
        return evaluated, truncated

    async def run(self, *, by: Actor | None = None) -> RetentionRunCompleted:
        """Evaluate every policy now, send what is due, record the run."""
        started = self.clock.now()
        run_id = new_event_id()
        policies = await self.policies.all()
        planned: dict[str, PlannedOrder] = {}
        evaluated, truncated = 0, False
        for policy in sorted(policies, key=lambda p: p.policy_id):
            seen, cut = await self._plan_policy(policy, policies, planned)
            evaluated += seen
            truncated = truncated or cut
        records: list[OrderRecord] = []
        issued: list[IssuedOrder] = []
        for order in planned.values():
            command = _command(order, run_id)
            await self.publisher.publish(command)
            issued.append(IssuedOrder(tuple(order.keys), command.command_id, run_id, started))
            records.append(
                OrderRecord(
                    command_id=command.command_id,
                    kind=order.kind,
                    policy_id=order.policy_id,
                    target=order.target,
                    trigger_event=order.trigger_event,
                    triggered_at=order.triggered_at,
                    due_at=order.due_at,
                    categories_held=list(order.categories_held),
                    reason=order.reason,
                )
            )
        await self.orders.record(issued)
        completed = RetentionRunCompleted(
            run_id=run_id,
            started_at=started,
            completed_at=self.clock.now(),
            evaluated=evaluated,
            orders=records,
            truncated=truncated,
        )
        await self.repository.append(
            f"retention-run:{run_id}",
            0,
            [NewEvent(completed, actor=by, purpose="legal_compliance", resource_id=run_id)],
        )
        log.info("retention run", extra={"run_id": run_id, "orders": len(records)})
        return completed
