"""One scheduler pass (`RETENTION_SCHEDULER_INTERVAL_SECONDS`; also `POST /retention/run`).

In order: end holds whose `until` passed (their held parts get ordered erased), mark overdue
requests, order or retry erasures, collect access packages still missing a service, delete
expired packages, then evaluate the retention policies. Each step is bounded and failures of
one request never stop the pass; the result counts what happened (the overdue count feeds
the service's metrics, with the time left to the nearest deadline).
"""

from __future__ import annotations

from dataclasses import dataclass

from mmgen.events.envelope import Actor
from mmgen.retention.domain.events import RetentionRunCompleted
from mmgen.retention.service_layer.access import AccessPackages
from mmgen.retention.service_layer.erasure import ErasureCoordinator
from mmgen.retention.service_layer.holds import LegalHolds
from mmgen.retention.service_layer.policies import RetentionRuns
from mmgen.retention.service_layer.requests import PrivacyRequests


@dataclass(frozen=True)
class PassResult:
    holds_ended: int
    marked_overdue: int
    erasures_ordered: int
    erasures_retried: int
    packages_ready: int
    packages_deleted: int
    policy_orders: int
    run_id: str
    overdue_open: int
    #: Seconds to the earliest deadline of an open, unanswered request (None: none waits).
    nearest_deadline_seconds: float | None
    #: The policy run of this pass: every order it sent, and why.
    run: RetentionRunCompleted


class Scheduler:
    def __init__(
        self,
        *,
        requests: PrivacyRequests,
        coordinator: ErasureCoordinator,
        access: AccessPackages,
        holds: LegalHolds,
        runs: RetentionRuns,
    ) -> None:
        self.requests = requests
        self.coordinator = coordinator
        self.access = access
        self.holds = holds
        self.runs = runs

    async def tick(self, *, by: Actor | None = None) -> PassResult:
        holds_ended = await self.holds.end_expired()
        overdue = await self.requests.mark_overdue()
        open_ids = await self.requests.open_ids()
        erasures = await self.coordinator.tick(open_ids)
        ready = await self.access.retry(open_ids)
        deleted = await self.access.purge_expired()
        run = await self.runs.run(by=by)
        return PassResult(
            holds_ended=holds_ended,
            marked_overdue=overdue,
            erasures_ordered=erasures["ordered"],
            erasures_retried=erasures["retried"],
            packages_ready=ready,
            packages_deleted=deleted,
            policy_orders=len(run.orders),
            run_id=run.run_id,
            overdue_open=await self.requests.count_overdue(),
            nearest_deadline_seconds=await self.requests.seconds_to_nearest_deadline(),
            run=run,
        )
