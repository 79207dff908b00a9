"""Encryption of an event's personal fields: AES-256-GCM under the owner's data key.

The event id is the associated data, so a ciphertext copied onto another event does not
decrypt. A shredded owner's ciphertext decrypts to `ERASED` (never an exception); a key that
is missing for any other reason, or a ciphertext that fails authentication, is an error —
logged here and raised, because it means data loss or tampering, not erasure.
"""

from __future__ import annotations

import logging
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mmgen.events.envelope import PII_ALG, PiiBlob
from mmgen.events.erased import Erased
from mmgen.events.errors import DataKeyMissingError, PersonalDataCorruptError
from mmgen.events.keys import NONCE_BYTES, Keystore

log = logging.getLogger(__name__)


class PersonalDataCipher:
    """Encrypts and decrypts the personal part of events with per-owner keys from a `Keystore`."""

    def __init__(self, keystore: Keystore) -> None:
        self.keystore = keystore

    async def encrypt(self, owner: str, event_id: str, plaintext: bytes) -> PiiBlob:
        """Seal `plaintext` for `owner`; raises `OwnerErasedError` for an erased owner."""
        key = await self.keystore.key_for_write(owner)
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = AESGCM(key.key).encrypt(nonce, plaintext, event_id.encode())
        return PiiBlob(
            owner=owner, key_id=key.key_id, alg=PII_ALG, nonce=nonce, ciphertext=ciphertext
        )

    async def decrypt(self, blob: PiiBlob, event_id: str) -> bytes | Erased:
        """The plaintext, or `Erased(owner)` if the owner was shredded."""
        try:
            key = await self.keystore.key_for_read(blob.owner, blob.key_id)
        except DataKeyMissingError:
            log.error("event %s: data key %s of %s is missing", event_id, blob.key_id, blob.owner)
            raise
        if key is None:
            return Erased(blob.owner)
        try:
            return AESGCM(key.key).decrypt(blob.nonce, blob.ciphertext, event_id.encode())
        except InvalidTag as exc:
            log.error("event %s: personal data of %s fails authentication", event_id, blob.owner)
            raise PersonalDataCorruptError(
                f"personal data of event {event_id} (owner {blob.owner}) fails authentication"
            ) from exc
