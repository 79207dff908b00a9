"""Access requests (GDPR Art. 15): collect every service's export into one package.

The package is kept only as long as needed to hand it over: encrypted under the subject's
data key (AES-256-GCM through the event kernel's cipher, the package id as associated data),
deleted after `ttl` (30 days by default) by the scheduler, and unreadable at once if the
subject is erased (their key is shredded). Only the requester may download it. A service that
does not answer leaves the request in progress, showing which one; the scheduler collects
again.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

from mmgen.events.crypto import PersonalDataCipher
from mmgen.events.erased import Erased
from mmgen.events.ids import new_event_id
from mmgen.retention.domain.access_package import PACKAGE_SCHEMA, assemble_package
from mmgen.retention.domain.errors import (
    PackageExpiredError,
    PackageNotReadyError,
    PrivacyRequestNotFoundError,
    ServiceUnreachableError,
)
from mmgen.retention.domain.records import StoredPackage
from mmgen.retention.domain.requests import PrivacyRequest, RequestStatus
from mmgen.retention.service_layer.ports import (
    ActivityStore,
    Clock,
    HoldViews,
    PackageStore,
    PolicyStore,
    RequestViews,
    ServiceDirectory,
)
from mmgen.retention.service_layer.requests import RequestBook
from mmgen.runtime.contract import SubjectExport, owner_of_subject

log = logging.getLogger(__name__)


class AccessPackages:
    def __init__(
        self,
        *,
        book: RequestBook,
        views: RequestViews,
        directory: ServiceDirectory,
        policies: PolicyStore,
        holds: HoldViews,
        activity: ActivityStore,
        packages: PackageStore,
        cipher: PersonalDataCipher,
        clock: Clock,
        ttl: timedelta = timedelta(days=30),
    ) -> None:
        self.book = book
        self.views = views
        self.directory = directory
        self.policies = policies
        self.holds = holds
        self.activity = activity
        self.packages = packages
        self.cipher = cipher
        self.clock = clock
        self.ttl = ttl

    async def collect(self, request: PrivacyRequest) -> bool:
        """Gather every export and store the package; False while a service is missing."""
        if request.request_type != "access" or request.final:
            return False
        services = list(self.directory.services())
        if request.status is RequestStatus.received:
            now = self.clock.now()
            request, _ = await self.book.change(
                request.request_id, lambda r: r.start_collection(services, now)
            )
        exports: list[SubjectExport] = []
        progress: list[dict[str, Any]] = []
        for service in services:
            try:
                export = await self.directory.export(service, request.subject_id)
            except ServiceUnreachableError as exc:
                progress.append({"service": service, "state": "to_retry", "detail": exc.reason})
                continue
            exports.append(export)
            progress.append({"service": service, "state": "exported", "detail": ""})
        try:
            purposes = await self.directory.purposes()
        except ServiceUnreachableError as exc:
            purposes = []
            progress.append({"service": "purposes", "state": "to_retry", "detail": exc.reason})
        await self.views.set_progress(request.request_id, progress)
        if any(p["state"] == "to_retry" for p in progress):
            return False
        now = self.clock.now()
        holds = (await self.holds.of_subjects([request.subject_id])).get(request.subject_id, [])
        package = assemble_package(
            request_id=request.request_id,
            subject_id=request.subject_id,
            generated_at=now,
            exports=exports,
            purposes=purposes,
            policies=await self.policies.all(),
            holds=holds,
            activity=await self.activity.subject(request.subject_id),
        )
        package_id = new_event_id()
        blob = await self.cipher.encrypt(
            owner_of_subject(request.subject_id),
            package_id,
            json.dumps(package, separators=(",", ":"), sort_keys=True).encode("utf-8"),
        )
        expires_at = now + self.ttl
        await self.packages.put(
            StoredPackage(
                package_id=package_id,
                request_id=request.request_id,
                subject_id=request.subject_id,
                requested_by=request.requested_by,
                blob=blob,
                created_at=now,
                expires_at=expires_at,
            )
        )
        await self.book.change(
            request.request_id,
            lambda r: r.package_ready(package_id, [x.service for x in exports], expires_at, now),
        )
        return True

    async def download(self, request_id: str, requester_id: str) -> dict[str, Any]:
        """`{package, schema}` for the requester; anyone else is told it does not exist."""
        request = await self.book.load(request_id)
        if request.request_type != "access" or request.requested_by != requester_id:
            raise PrivacyRequestNotFoundError(request_id)
        if request.package_id is None:
            raise PackageNotReadyError(f"the access package of {request_id} is not ready yet")
        stored = await self.packages.get(request.package_id)
        if stored is None or stored.expires_at <= self.clock.now():
            raise PackageExpiredError(
                f"the access package of {request_id} expired; make a new access request"
            )
        plain = await self.cipher.decrypt(stored.blob, stored.package_id)
        if isinstance(plain, Erased):
            raise PackageExpiredError(f"the access package of {request_id} was erased")
        return {"package": json.loads(plain), "schema": PACKAGE_SCHEMA}

    async def purge_expired(self) -> int:
        return await self.packages.delete_expired(self.clock.now())

    async def retry(self, request_ids: list[str]) -> int:
        """Scheduler pass: collect again for open access requests; returns how many finished."""
        done = 0
        for request_id in request_ids:
            try:
                request = await self.book.load(request_id)
                if request.request_type == "access" and not request.final:
                    done += int(await self.collect(request))
            except Exception:
                log.exception("access collection failed for %s", request_id)
        return done
