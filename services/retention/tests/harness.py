"""A retention service assembled from its use cases over given adapters (in-memory fakes by
default), and a small audit log the fake services write to."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from mmgen.auditlog import merkle
from mmgen.auditlog.checkpoint import Checkpoint, NoteSigner, sign_checkpoint
from mmgen.auditlog.entry import ChainBuilder
from mmgen.auditlog.memory import InMemoryNodeStore
from mmgen.auditlog.receipt import ReceiptCheckpoint, ReceiptSigner
from mmgen.events.envelope import Actor
from mmgen.events.kernel import EventKernel, in_memory_kernel
from mmgen.retention.adapters.memory import (
    FixedClock,
    InMemoryActivityStore,
    InMemoryAuditLogHeads,
    InMemoryCommandPublisher,
    InMemoryEvidenceStore,
    InMemoryHoldViews,
    InMemoryOrderLog,
    InMemoryPackageStore,
    InMemoryPolicyStore,
    InMemoryRequestViews,
    InMemoryServiceDirectory,
)
from mmgen.retention.domain.contract import Purpose, SubjectErasedReport
from mmgen.retention.domain.events import retention_registry
from mmgen.retention.domain.records import Command
from mmgen.retention.service_layer.access import AccessPackages
from mmgen.retention.service_layer.audit_feed import AuditFeed
from mmgen.retention.service_layer.erasure import ErasureCoordinator
from mmgen.retention.service_layer.holds import LegalHolds
from mmgen.retention.service_layer.policies import RetentionPolicies, RetentionRuns
from mmgen.retention.service_layer.receipts import Receipts
from mmgen.retention.service_layer.requests import PrivacyRequests, RequestBook
from mmgen.retention.service_layer.scheduler import Scheduler
from mmgen.runtime.contract import Footprint

SERVICES = ("consent", "identity", "profiles", "projects")
ORIGIN = "audit.mmgen.test/log"
T0 = datetime(2027, 1, 31, 9, tzinfo=UTC)
PURPOSES = [
    Purpose(id="project_execution", legal_basis="contract", data_categories=["project"]),
    Purpose(id="payment_processing", legal_basis="contract", data_categories=["payment"]),
    Purpose(
        id="cookies.analytics", legal_basis="consent", data_categories=["usage"], consent_based=True
    ),
]


@dataclass
class FakeLog:
    """The audit log as the consent service keeps it: chained entries, a tree, signed heads."""

    signer: NoteSigner = field(default_factory=lambda: NoteSigner.generate(ORIGIN))
    builder: ChainBuilder = field(default_factory=ChainBuilder)
    appender: merkle.TreeAppender = field(default_factory=merkle.TreeAppender)
    nodes: InMemoryNodeStore = field(default_factory=InMemoryNodeStore)
    entries: list[dict[str, Any]] = field(default_factory=list)

    def append(
        self,
        *,
        event_id: str,
        producer: str,
        event_type: str,
        action: str,
        at: datetime,
        subject_id: str | None = None,
        actor_id: str | None = None,
        actor_role: str | None = None,
        purpose: str | None = None,
        resource: dict[str, str] | None = None,
        categories: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        entry = self.builder.append(
            event_id=event_id,
            producer=producer,
            producer_seq=len(self.entries) + 1,
            event_type=event_type,
            action=action,
            subject_id=subject_id,
            actor_id=actor_id,
            actor_role=actor_role,
            purpose=purpose,
            resource=resource,
            categories=list(categories),
            occurred_at=at,
            recorded_at=at,
        )
        self.nodes.put(self.appender.append(entry.leaf_hash))
        doc = entry.to_json()
        self.entries.append(doc)
        return doc

    def head(self) -> ReceiptCheckpoint:
        size = len(self.entries)
        root = merkle.root_from_store(self.nodes, size)
        note = sign_checkpoint(Checkpoint(ORIGIN, size, root), self.signer)
        return ReceiptCheckpoint(size, root.hex(), note)

    def evidence(self, size: int) -> dict[int, tuple[dict[str, Any], dict[str, Any]]]:
        out = {}
        for seq in range(size):
            hashes = [h.hex() for h in merkle.inclusion_proof_from_store(self.nodes, seq, size)]
            out[seq] = (self.entries[seq], {"leaf_index": seq, "tree_size": size, "hashes": hashes})
        return out


@dataclass
class Harness:
    clock: FixedClock
    kernel: EventKernel
    views: InMemoryRequestViews
    hold_views: InMemoryHoldViews
    policy_store: InMemoryPolicyStore
    activity: InMemoryActivityStore
    orders: InMemoryOrderLog
    packages: InMemoryPackageStore
    evidence: InMemoryEvidenceStore
    publisher: InMemoryCommandPublisher
    directory: InMemoryServiceDirectory
    heads: InMemoryAuditLogHeads
    signer: ReceiptSigner
    book: RequestBook
    coordinator: ErasureCoordinator
    access: AccessPackages
    requests: PrivacyRequests
    holds: LegalHolds
    policies: RetentionPolicies
    runs: RetentionRuns
    receipts: Receipts
    feed: AuditFeed
    scheduler: Scheduler
    log: FakeLog

    def clean(self, subject_id: str, **held: int) -> None:
        """Every service shows zero readable data on the subject, except `held` categories."""
        for service in SERVICES:
            counts = held if service == "projects" else {}
            self.directory.footprints[(service, subject_id)] = Footprint.of(
                service, subject_id, key_erased=not counts, records=counts, readable=counts
            )

    def dirty(self, service: str, subject_id: str, fields: int = 3) -> None:
        self.directory.footprints[(service, subject_id)] = Footprint.of(
            service,
            subject_id,
            key_erased=False,
            records={"contact": 1},
            readable={"contact": fields},
        )

    def answer_parts(
        self, command: Command, service: str
    ) -> tuple[SubjectErasedReport, dict[str, Any]]:
        """`service` obeys `command`: its `SubjectErased` as its events topic carries it, and
        its audit-log entry (appended to the fake log), to be delivered by the caller."""
        event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{command.command_id}|{service}"))
        at = self.clock.now()
        subject = command.data["subject_id"]
        report = SubjectErasedReport(
            service=service,
            event_id=event_id,
            command_id=command.command_id,
            occurred_at=at,
            request_id=command.data["request_id"],
            subject_id=subject,
            keys_shredded=1,
            records_deleted={"contact": 2},
            categories_held=command.data["categories_held"],
        )
        entry = self.log.append(
            event_id=event_id,
            producer=service,
            event_type=f"{service}.SubjectErased",
            action="erase",
            at=at,
            subject_id=subject,
            resource={"type": "subject", "id": subject},
        )
        return report, entry

    async def answer(self, command: Command, service: str, *, audit_first: bool = False) -> int:
        """`service` obeys `command`: its SubjectErased reaches retention by both routes."""
        report, entry = self.answer_parts(command, service)
        if audit_first:
            await self.feed.on_entries([entry])
            await self.coordinator.on_report(report)
        else:
            await self.coordinator.on_report(report)
            await self.feed.on_entries([entry])
        return int(entry["seq"])


def build_harness(now: datetime = T0, **adapters: Any) -> Harness:
    """The use cases over in-memory fakes; pass `kernel=`, `views=`, ... to use others."""
    clock = FixedClock(now)
    kernel = adapters.get("kernel") or in_memory_kernel(
        producer="retention", registry=retention_registry()
    )
    views = adapters.get("views") or InMemoryRequestViews()
    hold_views = adapters.get("hold_views") or InMemoryHoldViews()
    policy_store = adapters.get("policy_store") or InMemoryPolicyStore()
    activity = adapters.get("activity") or InMemoryActivityStore()
    orders = adapters.get("orders") or InMemoryOrderLog()
    packages = adapters.get("packages") or InMemoryPackageStore()
    evidence = adapters.get("evidence") or InMemoryEvidenceStore()
    publisher = InMemoryCommandPublisher()
    directory = InMemoryServiceDirectory(SERVICES, purposes=PURPOSES)
    log = FakeLog()
    heads = InMemoryAuditLogHeads()
    signer = ReceiptSigner(bytes(range(32)))
    book = RequestBook(kernel.repository, views)
    coordinator = ErasureCoordinator(
        book=book,
        views=views,
        holds=hold_views,
        evidence=evidence,
        publisher=publisher,
        directory=directory,
        clock=clock,
        ack_timeout=timedelta(seconds=30),
        max_attempts=3,
    )
    access = AccessPackages(
        book=book,
        views=views,
        directory=directory,
        policies=policy_store,
        holds=hold_views,
        activity=activity,
        packages=packages,
        cipher=kernel.mapper.cipher,
        clock=clock,
        ttl=timedelta(days=30),
    )
    requests = PrivacyRequests(
        book, views, clock, processors={"erasure": coordinator.start, "access": access.collect}
    )
    holds = LegalHolds(
        repository=kernel.repository, views=hold_views, coordinator=coordinator, clock=clock
    )
    policies = RetentionPolicies(repository=kernel.repository, store=policy_store, clock=clock)
    runs = RetentionRuns(
        repository=kernel.repository,
        policies=policy_store,
        activity=activity,
        holds=hold_views,
        requests=views,
        orders=orders,
        publisher=publisher,
        clock=clock,
        max_orders=50,
        max_candidates=100,
    )
    receipts = Receipts(book=book, heads=heads, signer=signer)
    feed = AuditFeed(activity=activity, coordinator=coordinator)
    scheduler = Scheduler(
        requests=requests, coordinator=coordinator, access=access, holds=holds, runs=runs
    )
    return Harness(
        clock, kernel, views, hold_views, policy_store, activity, orders, packages, evidence,
        publisher, directory, heads, signer, book, coordinator, access, requests, holds,
        policies, runs, receipts, feed, scheduler, log,
    )  # fmt: skip


def subject_actor(subject_id: str, role: str = "creator") -> Actor:
    return Actor(id=subject_id, role=role)
