"""HTTP clients of the other services: `/internal/subjects/{id}/export|footprint`, the purposes
catalogue, the audit log's latest signed head and its entries of erasure answers.

Calls carry a service token from identity (`ServiceTokenProvider`: `role: service`, fetched
once per lifetime, dropped and fetched again after a 401) and `X-Purpose: legal_compliance`
(privacy requests are a legal obligation). Every failure — connection, timeout, an answer
other than 200, a body over the size limit or of the wrong shape, an answer about another
subject — is a `ServiceUnreachableError`: the step is retried later, never taken as success.

An export comes in pages (`limit`, `cursor`); the directory follows `next_cursor` until it is
null and hands on one whole `SubjectExport`. It reads at most `max_export_pages` pages: past
that the package says `events_truncated`, rather than a service keeping the walk going forever.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import quote, urlencode

import httpx
from pydantic import ValidationError

from mmgen.auditlog.receipt import ReceiptCheckpoint
from mmgen.platform.errors import PlatformError
from mmgen.platform.service_tokens import ServiceTokenProvider
from mmgen.retention.domain.contract import AuditRecord, Purpose
from mmgen.retention.domain.errors import ServiceUnreachableError
from mmgen.runtime.contract import Footprint, SubjectExport

log = logging.getLogger(__name__)
PURPOSE_HEADERS = {"X-Purpose": "legal_compliance"}
#: Events asked for per export page, and the most pages read for one service's export.
EXPORT_PAGE_EVENTS = 1_000
EXPORT_MAX_PAGES = 50
#: How long the log is asked to wait for an erasure answer's entry (it allows at most 5 s),
#: and the time its call is given beyond that.
ANSWER_WAIT_S = 4.0
ANSWER_TIMEOUT_MARGIN_S = 5.0


class ServiceTokens(Protocol):
    """A source of this service's token (`ServiceTokenProvider` or `DeferredServiceTokens`)."""

    async def headers(self) -> dict[str, str]: ...

    def invalidate(self) -> None: ...


class DeferredServiceTokens:
    """A `ServiceTokenProvider` made on first use, from credentials read then.

    Under `mmgen up` retention's client secret is in a file identity writes when it starts;
    reading it at the first call (not at bootstrap, which does no I/O) lets retention start
    in any order and pick the secret up once identity has written it.
    """

    def __init__(
        self,
        credentials: Callable[[], tuple[str, str]],
        client: httpx.AsyncClient,
        service: str = "retention",
        audiences: Sequence[str] | None = None,
    ) -> None:
        self.credentials = credentials
        self.client = client
        self.service = service
        self.audiences = audiences
        self._provider: ServiceTokenProvider | None = None

    async def headers(self) -> dict[str, str]:
        if self._provider is None:
            url, secret = self.credentials()  # PlatformError when there are none yet
            self._provider = ServiceTokenProvider(
                url, self.service, secret, client=self.client, audiences=self.audiences
            )
        return await self._provider.headers()

    def invalidate(self) -> None:
        if self._provider is not None:
            self._provider.invalidate()


class _Caller:
    def __init__(self, client: httpx.AsyncClient, tokens: ServiceTokens, max_bytes: int) -> None:
        self.client = client
        self.tokens = tokens
        self.max_bytes = max_bytes

    async def get(
        self,
        service: str,
        url: str,
        *,
        authenticated: bool = True,
        absent: bool = False,
        timeout_s: float | None = None,
    ) -> Any:
        """The answer's JSON; `absent`: None for a 404 (what was asked for is not there yet);
        `timeout_s`: this call's own time limit (a call that waits on the other side)."""
        options: dict[str, Any] = {} if timeout_s is None else {"timeout": timeout_s}
        for attempt in range(2):
            headers = dict(PURPOSE_HEADERS)
            if authenticated:
                try:
                    headers.update(await self.tokens.headers())
                except PlatformError as exc:
                    raise ServiceUnreachableError("identity", f"no service token: {exc}") from exc
            try:
                response = await self.client.get(url, headers=headers, **options)
            except httpx.HTTPError as exc:
                raise ServiceUnreachableError(service, f"{type(exc).__name__}: {exc}") from exc
            if response.status_code == 401 and authenticated and attempt == 0:
                self.tokens.invalidate()  # identity rotated its keys or restarted
                continue
            if response.status_code == 404 and absent:
                return None
            if response.status_code != 200:
                raise ServiceUnreachableError(service, f"HTTP {response.status_code}")
            if len(response.content) > self.max_bytes:
                raise ServiceUnreachableError(
                    service, f"answer of {len(response.content)} bytes exceeds the limit"
                )
            try:
                return response.json()
            except ValueError as exc:
                raise ServiceUnreachableError(service, "answer is not JSON") from exc
        raise ServiceUnreachableError(service, "HTTP 401 with a fresh service token")


class HttpServiceDirectory:
    """`ServiceDirectory` over HTTP."""

    def __init__(
        self,
        *,
        urls: Mapping[str, str],
        services: Sequence[str],
        tokens: ServiceTokens,
        client: httpx.AsyncClient,
        purposes_service: str = "consent",
        max_bytes: int = 16 * 1024 * 1024,
        max_export_pages: int = EXPORT_MAX_PAGES,
    ) -> None:
        missing = [s for s in (*services, purposes_service) if s not in urls]
        if missing:
            raise ValueError(f"no URL for services {missing}")
        self.urls = {name: url.rstrip("/") for name, url in urls.items()}
        self.names = tuple(services)
        self.purposes_service = purposes_service
        self.caller = _Caller(client, tokens, max_bytes)
        self.max_export_pages = max_export_pages

    def services(self) -> tuple[str, ...]:
        return self.names

    async def _subject(
        self, service: str, subject_id: str, what: str, query: Mapping[str, Any] | None = None
    ) -> Any:
        url = f"{self.urls[service]}/internal/subjects/{subject_id}/{what}"
        if query:
            url = f"{url}?{urlencode(query)}"
        return await self.caller.get(service, url)

    async def export(self, service: str, subject_id: str) -> SubjectExport:
        """The whole export, page after page (the records come with the first)."""
        first = await self._export_page(service, subject_id, None)
        events, truncated, cursor = list(first.events), first.events_truncated, first.next_cursor
        pages = 1
        while cursor is not None:
            if pages >= self.max_export_pages:
                log.warning("export of %s stopped after %d pages", service, pages)
                truncated = True
                break
            page = await self._export_page(service, subject_id, cursor)
            events.extend(page.events)
            truncated = truncated or page.events_truncated
            cursor = page.next_cursor
            pages += 1
        return first.model_copy(
            update={"events": events, "events_truncated": truncated, "next_cursor": None}
        )

    async def _export_page(
        self, service: str, subject_id: str, cursor: str | None
    ) -> SubjectExport:
        query: dict[str, Any] = {"limit": EXPORT_PAGE_EVENTS}
        if cursor is not None:
            query["cursor"] = cursor
        body = await self._subject(service, subject_id, "export", query)
        try:
            export = SubjectExport.model_validate(body)
        except ValidationError as exc:
            raise ServiceUnreachableError(service, f"export has the wrong shape: {exc}") from exc
        if export.service != service or export.subject_id != subject_id:
            raise ServiceUnreachableError(service, "export names another service or subject")
        return export

    async def footprint(self, service: str, subject_id: str) -> Footprint:
        body = await self._subject(service, subject_id, "footprint")
        try:
            footprint = Footprint.model_validate(body)
        except ValidationError as exc:
            raise ServiceUnreachableError(service, f"footprint has the wrong shape: {exc}") from exc
        if footprint.service != service or footprint.subject_id != subject_id:
            raise ServiceUnreachableError(service, "footprint names another service or subject")
        return footprint

    async def purposes(self) -> list[Purpose]:
        service = self.purposes_service
        body = await self.caller.get(service, f"{self.urls[service]}/purposes", authenticated=False)
        try:
            return [Purpose.model_validate(item) for item in body["items"]]
        except (KeyError, TypeError, ValidationError) as exc:
            raise ServiceUnreachableError(service, "purposes have the wrong shape") from exc


class HttpAuditLogHeads:
    """`AuditLogHeads`: `GET /audit/checkpoints/latest` of the service keeping the log."""

    def __init__(
        self,
        *,
        url: str,
        tokens: ServiceTokens,
        client: httpx.AsyncClient,
        service: str = "consent",
    ) -> None:
        self.url = url.rstrip("/") + "/audit/checkpoints/latest"
        self.service = service
        self.caller = _Caller(client, tokens, 1024 * 1024)

    async def latest(self) -> ReceiptCheckpoint:
        body = await self.caller.get(self.service, self.url)
        try:
            return ReceiptCheckpoint(
                tree_size=int(body["tree_size"]),
                root_hash=str(body["root_hash"]),
                note=str(body["note"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ServiceUnreachableError(self.service, "signed head has the wrong shape") from exc


class HttpAuditLogAnswers:
    """`AuditLogAnswers`: `GET /audit/erasure-answers/{event_id}?wait=` of the service keeping
    the log, which answers as soon as the entry is appended (or 404 after `wait_s`)."""

    def __init__(
        self,
        *,
        url: str,
        tokens: ServiceTokens,
        client: httpx.AsyncClient,
        wait_s: float = ANSWER_WAIT_S,
        service: str = "consent",
    ) -> None:
        self.url = url.rstrip("/") + "/audit/erasure-answers/"
        self.wait_s = wait_s
        self.service = service
        self.caller = _Caller(client, tokens, 64 * 1024)

    async def entry(self, event_id: str) -> AuditRecord | None:
        url = f"{self.url}{quote(event_id, safe='')}?{urlencode({'wait': self.wait_s})}"
        body = await self.caller.get(
            self.service, url, absent=True, timeout_s=self.wait_s + ANSWER_TIMEOUT_MARGIN_S
        )
        if body is None:
            return None
        try:
            record = AuditRecord.model_validate(body)
        except ValidationError as exc:
            raise ServiceUnreachableError(
                self.service, f"entry has the wrong shape: {exc}"
            ) from exc
        if record.event_id != event_id:
            raise ServiceUnreachableError(self.service, "entry of another event")
        return record
