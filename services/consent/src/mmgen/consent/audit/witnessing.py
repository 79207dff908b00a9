"""Witnesses for the audit log: every new signed head is submitted for cosignature (C2SP).

Each configured witness (`CONSENT_AUDIT_WITNESSES`: `<base URL> <witness verifier key>`,
entries separated by commas or newlines) gets `POST <URL>/add-checkpoint` with the old size —
the size of the last head that witness cosigned, kept per witness — the consistency proof
from it (read from the log's tiles) and the new note. A 409 answer names the size the witness
really holds: the request is made again from there (a restart, a lost answer). The returned
line is checked against the pinned witness key before it is kept with the head.

A witness that is down or refuses never stops the log: the head is kept without its
cosignature, the refusal is logged (a refusal of a validly signed head means the witness saw
another history: an operator must look), and the checkpointer offers the latest head again
later. Verifiers decide how many cosignatures they require (`--quorum`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from mmgen.auditlog.cosignature import CosignatureVerifier
from mmgen.auditlog.errors import AuditLogError
from mmgen.auditlog.witness_protocol import (
    ADD_CHECKPOINT_PATH,
    SIZE_CONTENT_TYPE,
    AddCheckpointRequest,
    parse_size,
    verified_cosignature,
)
from mmgen.consent.audit.store import CheckpointRecord, MongoAuditStore

log = logging.getLogger(__name__)

#: 409 answers followed per submission (one is expected at most: the stored size was stale).
MAX_CONFLICTS = 3


@dataclass(frozen=True)
class WitnessEndpoint:
    """One configured witness: where to submit, and the key its cosignatures must verify under."""

    url: str
    key: CosignatureVerifier

    @property
    def id(self) -> str:
        """`<name>+<key ID>`: how the head's stored cosignatures name their witness."""
        return f"{self.key.name}+{self.key.key_id.hex()}"


def parse_witnesses(text: str) -> list[WitnessEndpoint]:
    """`<URL> <verifier key>` entries, separated by commas or newlines (ValueError otherwise)."""
    endpoints: list[WitnessEndpoint] = []
    for entry in text.replace(",", "\n").splitlines():
        parts = entry.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[0].startswith(("http://", "https://")):
            raise ValueError(f"witness entry {entry.strip()!r} is not '<http(s) URL> <key>'")
        try:
            key = CosignatureVerifier.from_string(parts[1])
        except AuditLogError as exc:
            raise ValueError(f"witness entry {entry.strip()!r}: {exc}") from exc
        endpoints.append(WitnessEndpoint(parts[0].rstrip("/"), key))
    ids = [e.id for e in endpoints]
    if len(set(ids)) != len(ids):
        raise ValueError("a witness key is configured twice")
    return endpoints


class WitnessRefusedError(Exception):
    """A witness answered, and not with a cosignature of this head."""

    def __init__(self, witness: str, status: int, detail: str) -> None:
        super().__init__(f"witness {witness} refused: HTTP {status} {detail}")
        self.status = status


class Witnessing:
    """Gets the audit log's heads cosigned by every configured witness."""

    def __init__(
        self,
        store: MongoAuditStore,
        endpoints: Sequence[WitnessEndpoint],
        *,
        timeout_seconds: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.store = store
        self.endpoints = list(endpoints)
        self._timeout = timeout_seconds
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        self._sizes: dict[str, int] = {}
        #: (witness, tree size, root) a witness refused for good: not offered again.
        self._refused: set[tuple[str, int, str]] = set()

    async def cosign(self, tree_size: int, note: str) -> dict[str, str]:
        """Witness id → cosignature line, of every witness that cosigned this new head
        (the others are logged, and offered the head again by `complete`)."""
        results = await asyncio.gather(
            *(self._submit(endpoint, tree_size, note) for endpoint in self.endpoints)
        )
        return {
            endpoint.id: line
            for endpoint, line in zip(self.endpoints, results, strict=True)
            if line is not None
        }

    async def complete(self, record: CheckpointRecord) -> CheckpointRecord:
        """Offer a stored head to the witnesses whose cosignature it lacks; keep what comes."""
        missing = [
            e
            for e in self.endpoints
            if e.id not in record.cosigners
            and (e.id, record.tree_size, record.root_hash) not in self._refused
        ]
        if not missing:
            return record
        lines = await asyncio.gather(
            *(
                self._submit(e, record.tree_size, record.note, root=record.root_hash)
                for e in missing
            )
        )
        for endpoint, line in zip(missing, lines, strict=True):
            if line is not None:
                await self.store.add_cosignature(record.tree_size, endpoint.id, line)
        return await self.store.checkpoint(record.tree_size) or record

    async def _submit(
        self, endpoint: WitnessEndpoint, size: int, note: str, *, root: str | None = None
    ) -> str | None:
        try:
            line = await self._request(endpoint, size, note)
        except WitnessRefusedError as exc:
            if 400 <= exc.status < 500 and root is not None:  # a decision, not an outage
                self._refused.add((endpoint.id, size, root))
            log.error("audit head of size %d not cosigned: %s", size, exc)
            return None
        except (httpx.HTTPError, AuditLogError) as exc:
            log.warning("witness %s unreachable or answered badly: %s", endpoint.url, exc)
            return None
        log.info("audit head of size %d cosigned by %s", size, endpoint.key.name)
        return line

    async def _request(self, endpoint: WitnessEndpoint, size: int, note: str) -> str:
        old = await self._known_size(endpoint)
        for _ in range(MAX_CONFLICTS):
            if old > size:
                raise WitnessRefusedError(
                    endpoint.key.name,
                    409,
                    f"it cosigned a tree of size {old}, larger than this head ({size}): "
                    "the log lost entries it had published",
                )
            proof = [] if old in (0, size) else await self.store.consistency_proof(old, size)
            body = AddCheckpointRequest.of(old, proof, note).encode()
            response = await self._client().post(
                endpoint.url + ADD_CHECKPOINT_PATH,
                content=body,
                headers={"Content-Type": "text/plain; charset=utf-8"},
            )
            if response.status_code == 200:
                line = verified_cosignature(note, response.text, endpoint.key).line()
                await self._remember(endpoint, size)
                return line
            content_type = response.headers.get("content-type", "")
            if response.status_code == 409 and content_type.startswith(SIZE_CONTENT_TYPE):
                held = parse_size(response.content)
                await self._remember(endpoint, held)
                if held == old:  # the same size with another root: a different history
                    raise WitnessRefusedError(
                        endpoint.key.name, 409, f"it cosigned another tree of size {held}"
                    )
                old = held
                continue
            raise WitnessRefusedError(endpoint.key.name, response.status_code, _detail(response))
        raise WitnessRefusedError(endpoint.key.name, 409, "its size kept changing")

    async def _known_size(self, endpoint: WitnessEndpoint) -> int:
        if endpoint.id not in self._sizes:
            self._sizes[endpoint.id] = await self.store.witness_size(endpoint.id)
        return self._sizes[endpoint.id]

    async def _remember(self, endpoint: WitnessEndpoint, size: int) -> None:
        self._sizes[endpoint.id] = size
        await self.store.set_witness_size(endpoint.id, size)

    def _client(self) -> httpx.AsyncClient:
        """The HTTP client, made on first use again after `aclose` (a replica that leads the
        log again after a standby period submits again)."""
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self._timeout, transport=self._transport)
        return self._http

    async def aclose(self) -> None:
        """Close the client and forget the sizes (another replica may have moved them)."""
        http, self._http = self._http, None
        self._sizes.clear()
        if http is not None:
            await http.aclose()


def _detail(response: httpx.Response) -> str:
    try:
        body: Any = response.json()
        return str(body.get("detail") or body.get("title") or body)[:300]
    except ValueError:
        return response.text[:300]


__all__ = ["WitnessEndpoint", "WitnessRefusedError", "Witnessing", "parse_witnesses"]
