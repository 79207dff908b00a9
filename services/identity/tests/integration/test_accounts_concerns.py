"""Identity's accounts and email reservations are written and read with `majority`.

A reservation or an account a failover rolls back would let a second account take an email
already given out (`mmgen.events.concerns`); checked on the commands sent to the database.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

from mmgen.events.mongo_testing import MAJORITY_READ, MAJORITY_WRITE, watched_database
from mmgen.identity.adapters.accounts import MongoAccountsReadModel


async def test_reservations_and_account_transactions_use_majority(
    mongo_uri: str, mongo_db: Any
) -> None:
    async with watched_database(mongo_uri, mongo_db.name) as (db, commands):
        accounts = MongoAccountsReadModel(db)
        await accounts.ensure_indexes()
        user, email = str(uuid.uuid4()), secrets.token_hex(16)
        commands.clear()

        await accounts.reserve_email(email, user)
        (reserve,) = commands.named("insert", "email_index")
        assert reserve["writeConcern"] == MAJORITY_WRITE
        assert (await accounts.reservation(email)) is not None
        (read,) = commands.named("find", "email_index")
        assert read["readConcern"] == MAJORITY_READ

        commands.clear()
        applied = await accounts.registered(
            user, role="client", email_index=email, version=1, created_at=datetime.now(UTC)
        )
        assert applied is True
        first = commands.sent[0]
        assert first["startTransaction"] is True and first["readConcern"] == MAJORITY_READ
        (commit,) = commands.named("commitTransaction")
        assert commit["writeConcern"] == MAJORITY_WRITE
        assert await accounts.user_id_for_email(email) == user
