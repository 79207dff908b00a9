"""The signing-key ring on the real database follows a master-key rotation: keys wrapped under
the retired master key still load, and are re-wrapped under the current one."""

from __future__ import annotations

import os
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag

from mmgen.identity.adapters.hashing import derive_key
from mmgen.identity.adapters.signing_keys import MongoSigningKeyRing


def sub_key() -> bytes:
    return derive_key(os.urandom(32), "signing-keys")


async def test_keys_under_a_retired_master_key_load_and_are_rewrapped(mongo_db: Any) -> None:
    old, new = sub_key(), sub_key()
    before = MongoSigningKeyRing(mongo_db, old)
    await before.start()
    signing = await before.signing_key()

    with pytest.raises(InvalidTag):  # the new master key alone cannot read it yet
        await MongoSigningKeyRing(mongo_db, new).start()

    after = MongoSigningKeyRing(mongo_db, new, retired_wrapping_keys=[old])
    await after.start()
    assert (await after.signing_key()).private_bytes() == signing.private_bytes()

    # Re-wrapped: once the retired key is gone from the settings, the ring still loads.
    only_new = MongoSigningKeyRing(mongo_db, new)
    await only_new.start()
    assert (await only_new.signing_key()).kid == signing.kid
    assert await mongo_db["signing_keys"].count_documents({}) == 1  # no key was minted instead
