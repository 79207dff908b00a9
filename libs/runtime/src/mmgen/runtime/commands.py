"""Signed retention commands: retention signs what it orders, every service checks before obeying.

Anyone who can write to `retention.commands` could otherwise erase any subject: the broker says
nothing about who wrote a message. So retention signs each `EraseSubject` / `AnonymizeResource`
it publishes with its Ed25519 key (the receipt key, published at retention's
`/.well-known/jwks.json`), and `ErasureCommands` verifies the signature before a participant
sees the order.

The signature is a compact JWS (RFC 7515, `alg: EdDSA`, the key's RFC 7638 thumbprint as `kid`)
carried in the command's `data.signature`. Its protected header's `typ` is `COMMAND_JWS_TYPE`,
so a command cannot pass for an erasure receipt nor a receipt for a command; its payload is the
RFC 8785 canonical JSON of what the command orders (`command_claims`): the event id, type and
subject and the rest of `data`. A command whose fields differ from what was signed — a valid
signature lifted onto another subject — is refused like an unsigned one.

Refusals (`CommandRefusedError`, with a reason) are final for that message; keys that cannot be
fetched (`CommandKeysUnavailableError`) are not the message's fault and are retried.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from mmgen.auditlog.jcs import canonicalize
from mmgen.auditlog.receipt import (
    Ed25519Jwk,
    JwsInvalidError,
    ReceiptSigner,
    b64url_decode,
    verify_compact,
)
from mmgen.events.errors import EventsError
from mmgen.platform.auth import (
    JwksKeySet,
    KeySet,
    SigningKeysUnavailableError,
    StaticKeySet,
    well_formed_kid,
)
from mmgen.platform.auth.keys import public_key_bytes

if TYPE_CHECKING:
    from mmgen.events.envelope import Envelope

#: The protected header's `typ` of a signed retention command.
COMMAND_JWS_TYPE = "mmgen-retention-command+jws"
#: The member of a command's `data` holding its signature.
SIGNATURE_FIELD = "signature"
#: The only producer whose commands are obeyed.
COMMAND_PRODUCER = "retention"


class CommandRefusedError(EventsError):
    """A command that is not retention's, as signed: nothing is done. `reason` is a short slug
    (`unsigned`, `malformed`, `unknown_key`, `bad_signature`, `wrong_type`, `altered`,
    `wrong_producer`, `no_keys`) for the counter and the audit entry."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


class CommandKeysUnavailableError(EventsError):
    """Retention's keys could not be fetched: the command is retried, neither obeyed nor refused."""


def command_claims(
    *, event_id: str, event_type: str, subject_id: str | None, data: Mapping[str, Any]
) -> dict[str, Any]:
    """What a signature covers: the command's identity and its order (`data` less the signature)."""
    return {
        "event_id": event_id,
        "event_type": event_type,
        "subject_id": subject_id,
        "data": {k: v for k, v in data.items() if k != SIGNATURE_FIELD},
    }


def sign_command(
    signer: ReceiptSigner,
    *,
    event_id: str,
    event_type: str,
    subject_id: str | None,
    data: Mapping[str, Any],
) -> str:
    """The compact JWS to put in the command's `data.signature`."""
    claims = command_claims(
        event_id=event_id, event_type=event_type, subject_id=subject_id, data=data
    )
    return signer.sign_payload(canonicalize(claims), {"typ": COMMAND_JWS_TYPE})


#: How long a service waits before asking retention for its keys again when they could not
#: be fetched at start.
WARM_RETRY_S = 1.0


async def warm_command_keys(keys: JwksKeySet, retry_s: float = WARM_RETRY_S) -> None:
    """Fetch retention's keys when the service starts, so that its first command is not held
    up by the fetch (under load that fetch took as long as the erasure itself). Retention
    may start after this service: ask again every `retry_s` until it answers. A command that
    comes before then is retried, not refused (`CommandKeysUnavailableError`), as it always was."""
    while True:
        try:
            await keys.refresh()
            return
        except SigningKeysUnavailableError:
            await asyncio.sleep(retry_s)


def pinned_command_keys(public_keys: tuple[str, ...] | list[str]) -> StaticKeySet:
    """A key set of retention's public keys given as base64url `x` of Ed25519 JWKs (each one's
    `kid` is its thumbprint, as retention names it)."""
    keys = StaticKeySet()
    for x in public_keys:
        jwk = Ed25519Jwk.of(b64url_decode(x.strip()))
        keys.add(jwk.kid, Ed25519PublicKey.from_public_bytes(jwk.public_key))
    return keys


class CommandVerifier:
    """Checks a command against retention's keys (`keys`: pinned, or its JWKS over HTTP).

    Without keys every command is refused (`no_keys`): a service that cannot check a command
    does not obey it.
    """

    def __init__(self, keys: KeySet | None) -> None:
        self.keys = keys

    async def verify(self, command: Envelope) -> None:
        """Return if `command` is retention's, as signed; else raise `CommandRefusedError`."""
        if command.producer != COMMAND_PRODUCER:
            raise CommandRefusedError("wrong_producer", f"produced by {command.producer!r}")
        token = command.data.get(SIGNATURE_FIELD)
        if token is None:
            raise CommandRefusedError("unsigned", "the command carries no signature")
        if self.keys is None:
            raise CommandRefusedError("no_keys", "no retention command key is configured")
        kid = _kid_of(token)
        try:
            key = await self.keys.get(kid)
        except SigningKeysUnavailableError as exc:
            raise CommandKeysUnavailableError(f"retention's keys are unavailable: {exc}") from exc
        if key is None:
            raise CommandRefusedError("unknown_key", f"no retention key {kid!r}")
        try:
            header, payload = verify_compact(token, Ed25519Jwk(kid, public_key_bytes(key)))
        except JwsInvalidError as exc:
            raise CommandRefusedError("bad_signature", str(exc)) from exc
        if header.get("typ") != COMMAND_JWS_TYPE:
            raise CommandRefusedError("wrong_type", f"typ {header.get('typ')!r}")
        expected = command_claims(
            event_id=command.event_id,
            event_type=command.event_type,
            subject_id=command.subject_id,
            data=command.data,
        )
        if json.loads(payload) != expected:
            raise CommandRefusedError("altered", "the command is not what retention signed")


def _kid_of(token: Any) -> str:
    """The `kid` of a compact JWS's header, checked for form before any key lookup."""
    if not isinstance(token, str) or token.count(".") != 2:
        raise CommandRefusedError("malformed", "the signature is not a compact JWS")
    try:
        header = json.loads(b64url_decode(token.split(".", 1)[0]))
    except (JwsInvalidError, ValueError) as exc:
        raise CommandRefusedError("malformed", "the signature's header is not JSON") from exc
    kid = header.get("kid") if isinstance(header, dict) else None
    if not well_formed_kid(kid):
        raise CommandRefusedError("malformed", "the signature names no well-formed kid")
    assert isinstance(kid, str)
    return kid
