"""Retention's commands are obeyed only as retention signed them; anything else is refused,
counted and audited once, and nothing is erased."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import secrets
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from prometheus_client import CollectorRegistry

from libs.runtime.tests.unit.test_erasure_contract import RecordingParticipant
from mmgen.auditlog.receipt import RECEIPT_TYPE, ReceiptSigner, sign_compact
from mmgen.events.kernel import in_memory_kernel
from mmgen.events.registry import EventRegistry
from mmgen.platform.auth import JwksKeySet, SigningKeysUnavailableError, jwks_document
from mmgen.platform.errors import ConfigurationError
from mmgen.runtime.commands import (
    SIGNATURE_FIELD,
    CommandKeysUnavailableError,
    CommandVerifier,
    pinned_command_keys,
)
from mmgen.runtime.contract import register_standard_events
from mmgen.runtime.erasure import ErasureCommands, refusal_id, refused_counter
from mmgen.runtime.service import ServiceRuntime
from mmgen.runtime.settings import EventServiceSettings
from mmgen.runtime.testing import COMMAND_KEYS, COMMAND_SIGNER, erase_command, random_secrets


def _commands(keys: tuple[str, ...] = COMMAND_KEYS):  # type: ignore[no-untyped-def]
    registry = EventRegistry()
    events = register_standard_events(registry, "svc")
    kernel = in_memory_kernel(producer="svc", registry=registry)
    metrics = CollectorRegistry()
    participant = RecordingParticipant()
    verifier = CommandVerifier(pinned_command_keys(keys) if keys else None)
    commands = ErasureCommands(
        participant, kernel.repository, events, verifier, refused=refused_counter(metrics)
    )
    return commands, participant, kernel, metrics


def _refused(metrics: CollectorRegistry, reason: str) -> float:
    value = metrics.get_sample_value("retention_commands_refused_total", {"reason": reason})
    return value or 0.0


async def _assert_refused(command, reason: str, keys: tuple[str, ...] = COMMAND_KEYS) -> None:  # type: ignore[no-untyped-def]
    commands, participant, kernel, metrics = _commands(keys)
    await commands.handle(command)
    await commands.handle(command)  # redelivered: still one audit record
    assert participant.erased == []
    stored = await kernel.store.read_range(1, 100)
    assert [e.event_type for e in stored] == ["svc.AccessDenied"]
    [denial] = stored
    assert denial.event_id == refusal_id(command, "svc")
    assert denial.data["code"] == "command_refused"
    assert denial.data["reason"] == reason
    assert denial.data["route"] == "retention.commands"
    assert denial.subject_id == command.subject_id
    assert _refused(metrics, reason) == 2


async def test_a_signed_command_is_obeyed() -> None:
    commands, participant, kernel, _ = _commands()
    command = erase_command(str(uuid.uuid4()))
    await commands.handle(command)
    assert [o.subject_id for o in participant.erased] == [command.subject_id]
    assert [e.event_type for e in await kernel.store.read_range(1, 10)] == ["svc.SubjectErased"]


async def test_an_unsigned_command_is_refused() -> None:
    await _assert_refused(erase_command(str(uuid.uuid4()), signer=None), "unsigned")


async def test_a_command_signed_with_another_key_is_refused() -> None:
    other = ReceiptSigner(secrets.token_bytes(32))
    await _assert_refused(erase_command(str(uuid.uuid4()), signer=other), "unknown_key")


async def test_another_key_naming_retentions_kid_is_refused() -> None:
    impostor = ReceiptSigner(secrets.token_bytes(32), kid=COMMAND_SIGNER.kid)
    await _assert_refused(erase_command(str(uuid.uuid4()), signer=impostor), "bad_signature")


async def test_a_genuine_signature_moved_to_another_subject_is_refused() -> None:
    genuine = erase_command(str(uuid.uuid4()))
    victim = str(uuid.uuid4())
    moved = genuine.model_copy(
        update={"subject_id": victim, "data": {**genuine.data, "subject_id": victim}}
    )
    await _assert_refused(moved, "altered")
    fewer_holds = erase_command(str(uuid.uuid4()), held=["payment"])
    stripped = fewer_holds.model_copy(update={"data": {**fewer_holds.data, "categories_held": []}})
    await _assert_refused(stripped, "altered")


async def test_a_receipt_signature_does_not_pass_for_a_command() -> None:
    command = erase_command(str(uuid.uuid4()), signer=None)
    token = sign_compact(
        b"{}", COMMAND_SIGNER._seed, {"kid": COMMAND_SIGNER.kid, "typ": RECEIPT_TYPE}
    )
    forged = command.model_copy(update={"data": {**command.data, SIGNATURE_FIELD: token}})
    await _assert_refused(forged, "wrong_type")


async def test_a_command_from_another_producer_or_a_garbled_signature_is_refused() -> None:
    genuine = erase_command(str(uuid.uuid4()))
    await _assert_refused(genuine.model_copy(update={"producer": "consent"}), "wrong_producer")
    command = erase_command(str(uuid.uuid4()), signer=None)
    garbled = command.model_copy(update={"data": {**command.data, SIGNATURE_FIELD: "a.b"}})
    await _assert_refused(garbled, "malformed")


async def test_without_keys_every_command_is_refused() -> None:
    await _assert_refused(erase_command(str(uuid.uuid4())), "no_keys", keys=())


class _Unreachable:
    async def get(self, kid: str) -> None:
        raise SigningKeysUnavailableError("retention does not answer")


async def test_keys_out_of_reach_are_retried_not_refused() -> None:
    with pytest.raises(CommandKeysUnavailableError):
        await CommandVerifier(_Unreachable()).verify(erase_command(str(uuid.uuid4())))  # type: ignore[arg-type]


class _Settings(EventServiceSettings):
    service_name: str = "svc"


def test_the_local_stack_takes_its_retentions_keys(monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MMGEN_RETENTION_URL", "http://127.0.0.1:9005")
    local = _Settings(environment="development", state_dir=tmp_path)
    assert local.retention_jwks_url == "http://127.0.0.1:9005/.well-known/jwks.json"
    assert local.command_keys_setting_missing() is None
    elsewhere = _Settings(environment="test")
    assert elsewhere.retention_jwks_url is None
    message = elsewhere.command_keys_setting_missing()
    assert message is not None
    assert "RETENTION_JWKS_URL" in message and "RETENTION_COMMAND_KEYS" in message


async def test_a_service_that_obeys_commands_refuses_to_start_without_retentions_keys() -> None:
    settings = _Settings(environment="test", **random_secrets(_Settings))
    runtime = ServiceRuntime(settings, EventRegistry())
    runtime.erasure(RecordingParticipant())
    try:
        with pytest.raises(ConfigurationError, match="RETENTION_JWKS_URL"):
            async with runtime.lifespan():
                pytest.fail("started without retention's keys")
    finally:
        assert runtime.client is not None
        await runtime.client.close()


@contextlib.contextmanager
def _retention_keys(down_for: int) -> Iterator[tuple[str, list[int]]]:
    """An HTTP server playing retention's `/.well-known/jwks.json`: 503 to the first `down_for`
    requests (retention still starting), then its key. Yields the URL and the statuses sent."""
    public = Ed25519PublicKey.from_public_bytes(COMMAND_SIGNER.jwk.public_key)
    body = json.dumps(jwks_document({COMMAND_SIGNER.kid: public})).encode()
    sent: list[int] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status = 503 if len(sent) < down_for else 200
            sent.append(status)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body if status == 200 else b"{}")

        def log_message(self, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/.well-known/jwks.json", sent
    finally:
        server.shutdown()
        server.server_close()


async def test_retentions_keys_are_fetched_at_start_and_again_until_it_answers() -> None:
    """The first command is not held up fetching retention's keys: the service fetches them
    when it starts, and again each second while retention does not answer yet."""
    with _retention_keys(down_for=1) as (url, sent):
        registry = EventRegistry()
        settings = _Settings(environment="test", retention_jwks_url=url)
        runtime = ServiceRuntime(
            settings, registry, kernel=in_memory_kernel(producer="svc", registry=registry)
        )
        commands = runtime.erasure(RecordingParticipant())
        keys = commands.verifier.keys
        assert isinstance(keys, JwksKeySet)
        async with runtime.lifespan():
            for _ in range(200):  # 10 s
                if keys.cached_kids():
                    break
                await asyncio.sleep(0.05)
            assert keys.cached_kids() == [COMMAND_SIGNER.kid]
            assert sent == [503, 200]
            await commands.verifier.verify(erase_command(str(uuid.uuid4())))
            assert sent == [503, 200]  # the command took the keys fetched at start
