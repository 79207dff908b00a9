"""The audit log and a real witness (in-process, on its own file store): heads are cosigned
as they are signed and served with every signature line; a server that rewrites history after
the witness cosigned gets no cosignature, so a verification requiring the witness fails."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from mmgen.auditlog.checkpoint import parse_note
from mmgen.auditlog.cosignature import CosignatureSigner, open_cosigned_checkpoint
from mmgen.auditlog.errors import QuorumNotMetError
from mmgen.consent.audit import AuditComponent, build_audit
from mmgen.consent.audit.witnessing import Witnessing, parse_witnesses
from mmgen.platform import ServiceSettings, create_app
from mmgen.platform.auth import SigningKey, StaticKeySet, TokenVerifier, issue_token
from mmgen.verifier.checks import check_inclusion, verify_via_api
from mmgen.verifier.keys import TrustedKeys
from mmgen.witness.app import build_app as build_witness_app
from mmgen.witness.settings import WitnessSettings

WITNESS_URL = "http://witness.test"


@pytest.fixture
def witness_key() -> CosignatureSigner:
    return CosignatureSigner.generate("witness.test/w1")


@pytest.fixture
async def component(
    audit_settings: Any, mongo_db: Any, witness_key: CosignatureSigner
) -> AuditComponent:
    audit_settings.audit_witnesses = f"{WITNESS_URL} {witness_key.verifier().to_string()}"
    audit = build_audit(audit_settings, mongo_db, registry=CollectorRegistry())
    await audit.store.ensure_indexes()
    return audit


@pytest.fixture
async def witness_app(
    component: AuditComponent, witness_key: CosignatureSigner, tmp_path: Path
) -> AsyncIterator[Any]:
    settings = WitnessSettings(
        environment="test",
        log_json=False,
        signing_key=witness_key.to_string(),
        log_keys=(component.public_key,),
        store_dir=tmp_path / "witness",
    )
    app = build_witness_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def witnessed(component: AuditComponent, witness_app: Any) -> AsyncIterator[AuditComponent]:
    """The component, its checkpointer talking to the in-process witness."""
    configured = component.checkpointer.witnessing
    assert configured is not None and [e.url for e in configured.endpoints] == [WITNESS_URL]
    await configured.aclose()
    component.checkpointer.witnessing = Witnessing(
        component.store, configured.endpoints, transport=httpx.ASGITransport(app=witness_app)
    )
    yield component
    await component.checkpointer.stop()


@pytest.fixture
async def client(witnessed: AuditComponent) -> AsyncIterator[httpx.AsyncClient]:
    key = SigningKey.generate()
    app = create_app(
        ServiceSettings(environment="test", jwks_url=None, log_json=False, service_name="consent"),
        title="audit-test",
        version="0",
        routers=[witnessed.router],
        token_verifier=TokenVerifier(StaticKeySet.of(key), audience="consent"),
        denial_recorder=witnessed.denial_recorder,
        metrics_registry=CollectorRegistry(),
    )
    token = issue_token(key, subject=str(uuid.uuid4()), role="compliance", amr=["pwd", "otp"])
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://consent",
            headers={"Authorization": f"Bearer {token}"},
        ) as c:
            yield c


async def fill(component: AuditComponent, item: Any, n: int) -> None:
    start = (await component.store.head()).size
    await component.store.append([item(producer_seq=start + i + 1) for i in range(n)])


def trusted(component: AuditComponent, key: CosignatureSigner, quorum: int = 1) -> TrustedKeys:
    return TrustedKeys(component.checkpointer.verifier, (key.verifier(),), quorum)


async def test_heads_are_cosigned_and_served_with_every_signature_line(
    witnessed: AuditComponent,
    client: httpx.AsyncClient,
    witness_key: CosignatureSigner,
    item: Any,
) -> None:
    await fill(witnessed, item, 20)
    first = await witnessed.checkpointer.sign_now()
    assert first is not None and len(first.cosignatures) == 1
    await fill(witnessed, item, 13)
    second = await witnessed.checkpointer.sign_now()  # old size 20 and a proof from it
    assert second is not None and second.cosigners == (
        f"{witness_key.name}+{witness_key.key_id.hex()}",
    )
    headers = {"X-Purpose": "legal_compliance"}
    latest = (await client.get("/audit/checkpoints/latest", headers=headers)).json()
    names = [s.name for s in parse_note(latest["note"]).signatures]
    assert names == [witnessed.config.origin, witness_key.name]
    by_size = (await client.get("/audit/checkpoints/20", headers=headers)).json()
    assert by_size["note"] == first.note + first.cosignatures[0]
    witnessed_head = open_cosigned_checkpoint(
        latest["note"], witnessed.checkpointer.verifier, [witness_key.verifier()], quorum=1
    )
    assert witnessed_head.checkpoint.size == 33
    verdict, _ = await verify_via_api(client, trusted(witnessed, witness_key))
    assert verdict.valid and verdict.checked == 33 and verdict.witnesses == [witness_key.name]
    included = await check_inclusion(client, trusted(witnessed, witness_key), 7)
    assert included["witnesses"] == [witness_key.name]


async def test_a_witness_that_was_down_cosigns_the_latest_head_later(
    witnessed: AuditComponent, witness_app: Any, item: Any
) -> None:
    witnessing = witnessed.checkpointer.witnessing
    assert witnessing is not None
    endpoints = witnessing.endpoints
    await witnessing.aclose()

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("witness down", request=request)

    witnessed.checkpointer.witnessing = Witnessing(
        witnessed.store, endpoints, transport=httpx.MockTransport(refuse)
    )
    await fill(witnessed, item, 9)
    record = await witnessed.checkpointer.sign_now()
    assert record is not None and record.cosignatures == ()  # the log went on without it
    await witnessed.checkpointer.witnessing.aclose()
    # Back up, and a restarted consent (a new client, the size it knew from the store).
    witnessed.checkpointer.witnessing = Witnessing(
        witnessed.store, endpoints, transport=httpx.ASGITransport(app=witness_app)
    )
    completed = await witnessed.checkpointer.complete_cosignatures()
    assert completed is not None and len(completed.cosignatures) == 1
    # A stale size kept by the log (say, a lost answer): the witness's 409 sets it right.
    await witnessed.store.set_witness_size(endpoints[0].id, 3)
    witnessed.checkpointer.witnessing = Witnessing(
        witnessed.store, endpoints, transport=httpx.ASGITransport(app=witness_app)
    )
    await fill(witnessed, item, 4)
    again = await witnessed.checkpointer.sign_now()
    assert again is not None and len(again.cosignatures) == 1
    assert await witnessed.store.witness_size(endpoints[0].id) == 13


async def test_rewritten_history_is_refused_by_the_witness_and_fails_a_quorum(
    witnessed: AuditComponent,
    client: httpx.AsyncClient,
    witness_key: CosignatureSigner,
    item: Any,
    edit_log: Any,
    tmp_path: Path,
) -> None:
    await fill(witnessed, item, 30)
    honest = await witnessed.checkpointer.sign_now()
    assert honest is not None and len(honest.cosignatures) == 1
    verdict, _ = await verify_via_api(client, trusted(witnessed, witness_key))
    assert verdict.valid

    # Entry 25 changed, every later hash and node recomputed, the head re-signed by the log.
    await edit_log.rewrite_history(witnessed, 25)
    rewritten = await witnessed.store.latest_checkpoint()
    assert rewritten is not None and rewritten.tree_size == 30
    assert rewritten.root_hash != honest.root_hash and rewritten.cosignatures == ()
    evidence = (tmp_path / "witness" / "evidence.jsonl").read_text().splitlines()
    kept = json.loads(evidence[0])  # the witness kept the log's signature on a second history
    assert kept["refused_note"] == rewritten.note and kept["cosigned_size"] == 30

    # The log's own signature is valid, so without witnesses the rewrite passes ...
    alone, _ = await verify_via_api(client, TrustedKeys(witnessed.checkpointer.verifier))
    assert alone.valid
    # ... and requiring the witness it does not.
    required, _ = await verify_via_api(client, trusted(witnessed, witness_key))
    assert not required.valid and required.code == "witness_quorum_not_met"
    with pytest.raises(QuorumNotMetError):
        await check_inclusion(client, trusted(witnessed, witness_key), 3)

    # Extended further, the rewritten log is still refused (inconsistent with 30 cosigned).
    await fill(witnessed, item, 5)
    later = await witnessed.checkpointer.sign_now()
    assert later is not None and later.tree_size == 35 and later.cosignatures == ()
    assert (await witnessed.checkpointer.complete_cosignatures()).cosignatures == ()  # type: ignore[union-attr]
    required, _ = await verify_via_api(client, trusted(witnessed, witness_key))
    assert required.code == "witness_quorum_not_met"


def test_witness_settings_are_parsed_and_refused_when_malformed(
    witness_key: CosignatureSigner,
) -> None:
    key = witness_key.verifier().to_string()
    other = CosignatureSigner.generate("witness.test/w2").verifier().to_string()
    endpoints = parse_witnesses(f"http://a.test/ {key},\n https://b.test  {other}")
    assert [e.url for e in endpoints] == ["http://a.test", "https://b.test"]
    assert parse_witnesses("") == [] and parse_witnesses(" , \n") == []
    for bad in (
        f"a.test {key}",
        "http://a.test",
        f"http://a.test {key[:-4]}",
        f"http://a.test {key} extra",
        f"http://a {key}, http://b {key}",
    ):
        with pytest.raises(ValueError, match="witness"):
            parse_witnesses(bad)


async def test_a_replica_that_leads_again_checkpoints_and_cosigns_again(
    witnessed: AuditComponent, item: Any, eventually: Any
) -> None:
    """Stopped (the lease lost) and run again (the lease won back): heads are signed and
    cosigned again, the witness client made anew."""
    checkpointer = witnessed.checkpointer
    first = asyncio.create_task(checkpointer.run())
    await fill(witnessed, item, 12)
    checkpointer.notify(12)
    await eventually(lambda: _cosigned_size(witnessed, 12))
    await checkpointer.stop()
    await asyncio.wait_for(first, timeout=10)
    again = asyncio.create_task(checkpointer.run())
    try:
        await fill(witnessed, item, 12)
        checkpointer.notify(24)
        await eventually(lambda: _cosigned_size(witnessed, 24))
    finally:
        await checkpointer.stop()
        await asyncio.wait_for(again, timeout=10)


async def _cosigned_size(component: AuditComponent, size: int) -> bool:
    latest = await component.store.latest_checkpoint()
    return latest is not None and latest.tree_size == size and len(latest.cosignatures) == 1
