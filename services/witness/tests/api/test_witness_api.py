"""The witness over HTTP, in-process, on its real file store: statuses and bodies of the
protocol, durability across restarts, one process per store, no rollback under concurrency."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mmgen.auditlog.checkpoint import NoteSigner
from mmgen.auditlog.cosignature import CosignatureSigner, open_cosigned_checkpoint
from mmgen.auditlog.witness_protocol import AddCheckpointRequest, parse_size
from mmgen.witness.app import build_app
from mmgen.witness.settings import WitnessSettings
from mmgen.witness.store import JsonFileWitnessStore, WitnessStoreError


def settings_for(tmp_path: Path, log: Any, key: CosignatureSigner) -> WitnessSettings:
    return WitnessSettings(
        environment="test",
        log_json=False,
        signing_key=key.to_string(),
        log_keys=(log.key,),
        store_dir=tmp_path / "witness",
    )


async def client_for(settings: WitnessSettings) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://witness") as client:
            yield client


@pytest.fixture
async def client(tmp_path: Path, log: Any, witness_key: CosignatureSigner) -> Any:
    async for c in client_for(settings_for(tmp_path, log, witness_key)):
        yield c


async def post(client: httpx.AsyncClient, request: AddCheckpointRequest | bytes) -> httpx.Response:
    body = request if isinstance(request, bytes) else request.encode()
    return await client.post("/add-checkpoint", content=body)


async def test_cosignature_line_conflict_body_and_problem_statuses(
    client: httpx.AsyncClient, log: Any, witness_key: CosignatureSigner
) -> None:
    log.append(6)
    ok = await post(client, log.request(0))
    assert ok.status_code == 200 and ok.headers["content-type"].startswith("text/plain")
    assert ok.text.startswith(f"— {witness_key.name} ") and ok.text.endswith("\n")
    open_cosigned_checkpoint(
        log.note() + ok.text, log.signer.verifier(), [witness_key.verifier()], quorum=1
    )

    stale = await post(client, log.request(0))  # the witness is at 6 now
    assert stale.status_code == 409
    assert stale.headers["content-type"] == "text/x.tlog.size"
    assert parse_size(stale.content) == 6

    forged = await post(
        client, AddCheckpointRequest.of(0, [], log.note(signer=NoteSigner.generate(log.origin)))
    )
    other = type(log)(NoteSigner.generate("unknown.test/log"))
    other.append(1)
    unknown = await post(client, other.request(0))
    log.append(3)
    bad_proof = await post(client, AddCheckpointRequest.of(6, [bytes(32)] * 3, log.note()))
    malformed = await post(client, b"old 1\nnot base64\n\n" + log.note().encode())
    backwards = await post(client, AddCheckpointRequest.of(6, [], log.note(4)))
    for response, status, slug in (
        (forged, 403, "witness-checkpoint-not-signed"),
        (unknown, 404, "witness-unknown-log"),
        (bad_proof, 422, "witness-inconsistent"),
        (malformed, 400, "witness-bad-request"),
        (backwards, 400, "witness-bad-request"),
    ):
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith(slug)

    key = await client.get("/public-key")
    assert key.text.strip() == witness_key.verifier().to_string()
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and f"{log.origin}: 6" in ready.text


async def test_what_was_cosigned_survives_a_restart_and_binds_the_next_process(
    tmp_path: Path, log: Any, witness_key: CosignatureSigner
) -> None:
    settings = settings_for(tmp_path, log, witness_key)
    log.append(9)
    async for client in client_for(settings):
        assert (await post(client, log.request(0))).status_code == 200
    state = json.loads((tmp_path / "witness" / "heads.json").read_text())
    assert state["logs"][log.origin]["size"] == 9
    restored = log.restored(5)
    restored.append(4, tag="rewritten")
    async for client in client_for(settings):
        refused = await post(client, restored.request(9))
        assert refused.status_code == 409 and parse_size(refused.content) == 9
        log.append(1)
        assert (await post(client, log.request(9))).status_code == 200
    evidence = (tmp_path / "witness" / "evidence.jsonl").read_text().splitlines()
    assert json.loads(evidence[0])["refused_note"] == restored.note(9)


def test_one_witness_process_per_store_and_no_silent_reset(tmp_path: Path) -> None:
    folder = tmp_path / "witness"
    first = JsonFileWitnessStore(folder)
    try:
        with pytest.raises(WitnessStoreError, match="another witness"):
            JsonFileWitnessStore(folder)
    finally:
        first.close()
    (folder / "heads.json").write_text('{"format": "mmgen-witness-state/1", "logs": {"x": 1}}')
    with pytest.raises(WitnessStoreError, match="unreadable"):
        JsonFileWitnessStore(folder)
    JsonFileWitnessStore(tmp_path / "fresh").close()  # and the lock is released on close
    JsonFileWitnessStore(tmp_path / "fresh").close()


async def test_concurrent_requests_never_roll_the_head_back(
    client: httpx.AsyncClient, log: Any
) -> None:
    log.append(4)
    assert (await post(client, log.request(0))).status_code == 200
    log.append(4)
    small = log.request(4, 6)
    large = log.request(4, 8)
    responses = await asyncio.gather(*(post(client, r) for r in (large, small) * 3))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 1, statuses  # the first one wins; the rest are 409
    winner = next(r for r in responses if r.status_code == 200)
    latest = 8 if log.note(8).split("\n")[2] in winner.request.content.decode() else 6
    for response in responses:
        if response.status_code == 409:
            assert parse_size(response.content) == latest
    ready = (await client.get("/readyz")).text
    assert f"{log.origin}: {latest}" in ready
