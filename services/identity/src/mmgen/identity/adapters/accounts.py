"""The accounts read model: who has an account, its role and status, and which email is whose.

Two record kinds, neither holding personal data in clear:
- an **account** `{_id: user id, role, status, email_index, version, created_at}`: the fold of
  the account's stream, `version` being the stream version it reflects;
- an **email reservation** `{_id: blind index, user_id, state}`: `pending` while a registration
  or correction is being written (then with `reserved_at`), `active` once its event is stored.

The write path reserves an email before its event exists, so two accounts can never have the
same address. Everything else is the projection's (`AccountsProjection`): its writes carry the
stream version of the event they apply and change nothing when the account already reflects it,
so request handlers (read-your-writes) and the catch-up projector can both apply an event, in
any order, any number of times.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from pymongo import ASCENDING
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from mmgen.events.concerns import durable, durable_session
from mmgen.events.envelope import normalize_time
from mmgen.identity.domain.errors import EmailTakenError
from mmgen.identity.domain.model import ACTIVE, CLOSED

PENDING = "pending"
T = TypeVar("T")


@dataclass(frozen=True)
class Account:
    user_id: str
    role: str
    status: str
    email_index: str
    version: int
    #: Tokens issued (`iat`) before this instant are void: the last password change or reset.
    tokens_not_before: int | None = None

    @property
    def active(self) -> bool:
        return self.status == ACTIVE


@dataclass(frozen=True)
class Reservation:
    user_id: str
    state: str
    reserved_at: datetime | None


class AccountsReadModel(Protocol):
    """Port of the accounts read model (see the module docstring)."""

    # --- the write path: email reservations --------------------------------------------------
    async def reserve_email(self, email_index: str, user_id: str) -> None:
        """Claim an email for `user_id` before its event is written; `EmailTakenError` if held."""
        ...

    async def reservation(self, email_index: str) -> Reservation | None: ...

    async def release_email(self, email_index: str, user_id: str) -> None: ...

    async def user_id_for_email(self, email_index: str) -> str | None:
        """The account an active email belongs to."""
        ...

    async def get(self, user_id: str) -> Account | None: ...

    # --- the projection: idempotent, versioned ------------------------------------------------
    async def registered(
        self, user_id: str, *, role: str, email_index: str, version: int, created_at: datetime
    ) -> bool:
        """Create the account, active, and hold its email; False if already applied."""
        ...

    async def email_changed(self, user_id: str, *, email_index: str, version: int) -> bool:
        """Move the account to a new email, freeing the old one; False if already applied."""
        ...

    async def closed(self, user_id: str, *, version: int | None) -> bool:
        """Close the account (for good); `version` None: a close recorded outside its stream."""
        ...

    async def credentials_changed(self, user_id: str, *, not_before: int) -> bool:
        """Void the account's tokens issued before `not_before` (the latest instant wins)."""
        ...

    # --- erasure ---------------------------------------------------------------------------

    async def delete_subject(self, user_id: str, session: AsyncClientSession | None = None) -> int:
        """Remove the account and its email records (the email is free again)."""
        ...

    async def count_subject(self, user_id: str) -> int: ...


def _now() -> datetime:
    return datetime.now(UTC)


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _closing(account: Any, version: int | None) -> dict[str, Any] | None:
    """What closing changes on an account (a document or dict), or None if nothing.

    A close from the account's stream applies once per version; one recorded outside it (a
    held erasure, before the erasure contract) applies while the account is open."""
    if account is None:
        return None
    if version is None:
        return None if account["status"] == CLOSED else {"status": CLOSED}
    if int(account.get("version", 0)) >= version:
        return None
    return {"status": CLOSED, "version": version}


class MongoAccountsReadModel:
    """Collections `users` (accounts) and `email_index` (reservations, `_id` = blind index)."""

    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.db = db
        # Majority (mmgen.events.concerns): a reservation or an account rolled back by a
        # failover would let a second account take an email already given out.
        self.users = durable(db["users"])
        self.emails = durable(db["email_index"])

    async def ensure_indexes(self) -> None:
        await self.emails.create_index([("user_id", ASCENDING)], name="user_id")

    async def reserve_email(self, email_index: str, user_id: str) -> None:
        try:
            await self.emails.insert_one(
                {"_id": email_index, "user_id": user_id, "state": PENDING, "reserved_at": _now()}
            )
        except DuplicateKeyError as exc:
            raise EmailTakenError("an account with this email exists already") from exc

    async def reservation(self, email_index: str) -> Reservation | None:
        doc = await self.emails.find_one({"_id": email_index})
        if doc is None:
            return None
        return Reservation(
            str(doc["user_id"]),
            str(doc["state"]),
            normalize_time(doc["reserved_at"]) if doc.get("reserved_at") else None,
        )

    async def release_email(self, email_index: str, user_id: str) -> None:
        await self.emails.delete_one({"_id": email_index, "user_id": user_id})

    async def user_id_for_email(self, email_index: str) -> str | None:
        doc = await self.emails.find_one({"_id": email_index, "state": ACTIVE})
        return str(doc["user_id"]) if doc else None

    async def get(self, user_id: str) -> Account | None:
        doc = await self.users.find_one({"_id": user_id})
        if doc is None:
            return None
        return Account(
            user_id=str(doc["_id"]),
            role=str(doc["role"]),
            status=str(doc["status"]),
            email_index=str(doc["email_index"]),
            version=int(doc.get("version", 0)),
            tokens_not_before=_int_or_none(doc.get("tokens_not_before")),
        )

    # --- projection writes, each one transaction ---------------------------------------------

    async def _transaction(self, work: Callable[[AsyncClientSession], Awaitable[T]]) -> T:
        async with durable_session(self.db.client) as session:
            result: T = await session.with_transaction(work)
            return result

    async def _hold(self, email_index: str, user_id: str, session: AsyncClientSession) -> None:
        """Make the email active for `user_id`, unless someone else holds it."""
        held = await self.emails.find_one({"_id": email_index}, session=session)
        if held is not None and held["user_id"] != user_id:
            return
        await self.emails.update_one(
            {"_id": email_index},
            {"$set": {"user_id": user_id, "state": ACTIVE}, "$unset": {"reserved_at": ""}},
            upsert=True,
            session=session,
        )

    async def registered(
        self, user_id: str, *, role: str, email_index: str, version: int, created_at: datetime
    ) -> bool:
        async def work(session: AsyncClientSession) -> bool:
            doc = await self.users.find_one({"_id": user_id}, session=session)
            if doc is not None and int(doc.get("version", 0)) >= version:
                return False
            await self.users.update_one(
                {"_id": user_id},
                {
                    "$set": {"role": role, "email_index": email_index, "version": version},
                    "$setOnInsert": {"status": ACTIVE, "created_at": created_at},
                },
                upsert=True,
                session=session,
            )
            await self._hold(email_index, user_id, session)
            return True

        return await self._transaction(work)

    async def email_changed(self, user_id: str, *, email_index: str, version: int) -> bool:
        async def work(session: AsyncClientSession) -> bool:
            doc = await self.users.find_one({"_id": user_id}, session=session)
            if doc is None or int(doc.get("version", 0)) >= version:
                return False
            await self.users.update_one(
                {"_id": user_id},
                {"$set": {"email_index": email_index, "version": version}},
                session=session,
            )
            await self._hold(email_index, user_id, session)
            old = doc.get("email_index")
            if old and old != email_index:
                await self.emails.delete_one({"_id": old, "user_id": user_id}, session=session)
            return True

        return await self._transaction(work)

    async def closed(self, user_id: str, *, version: int | None) -> bool:
        async def work(session: AsyncClientSession) -> bool:
            doc = await self.users.find_one({"_id": user_id}, session=session)
            changes = _closing(doc, version)
            if changes is None:
                return False
            await self.users.update_one({"_id": user_id}, {"$set": changes}, session=session)
            return True

        return await self._transaction(work)

    async def credentials_changed(self, user_id: str, *, not_before: int) -> bool:
        result = await self.users.update_one(
            {"_id": user_id}, {"$max": {"tokens_not_before": int(not_before)}}
        )
        return result.modified_count > 0

    async def delete_subject(self, user_id: str, session: AsyncClientSession | None = None) -> int:
        users = await self.users.delete_many({"_id": user_id}, session=session)
        emails = await self.emails.delete_many({"user_id": user_id}, session=session)
        return users.deleted_count + emails.deleted_count

    async def count_subject(self, user_id: str) -> int:
        users = await self.users.count_documents({"_id": user_id})
        return users + await self.emails.count_documents({"user_id": user_id})


class InMemoryAccountsReadModel:
    """The same read model in dictionaries, for unit tests (each method is atomic: no await)."""

    def __init__(self) -> None:
        self.accounts: dict[str, Account] = {}
        self.created_at: dict[str, datetime] = {}
        self.emails: dict[str, Reservation] = {}

    async def reserve_email(self, email_index: str, user_id: str) -> None:
        if email_index in self.emails:
            raise EmailTakenError("an account with this email exists already")
        self.emails[email_index] = Reservation(user_id, PENDING, _now())

    async def reservation(self, email_index: str) -> Reservation | None:
        return self.emails.get(email_index)

    async def release_email(self, email_index: str, user_id: str) -> None:
        held = self.emails.get(email_index)
        if held is not None and held.user_id == user_id:
            del self.emails[email_index]

    async def user_id_for_email(self, email_index: str) -> str | None:
        held = self.emails.get(email_index)
        return held.user_id if held is not None and held.state == ACTIVE else None

    async def get(self, user_id: str) -> Account | None:
        return self.accounts.get(user_id)

    def _hold(self, email_index: str, user_id: str) -> None:
        held = self.emails.get(email_index)
        if held is None or held.user_id == user_id:
            self.emails[email_index] = Reservation(user_id, ACTIVE, None)

    async def registered(
        self, user_id: str, *, role: str, email_index: str, version: int, created_at: datetime
    ) -> bool:
        account = self.accounts.get(user_id)
        if account is not None and account.version >= version:
            return False
        status = account.status if account is not None else ACTIVE
        kept = account.tokens_not_before if account is not None else None
        self.accounts[user_id] = Account(user_id, role, status, email_index, version, kept)
        self.created_at.setdefault(user_id, created_at)
        self._hold(email_index, user_id)
        return True

    async def email_changed(self, user_id: str, *, email_index: str, version: int) -> bool:
        account = self.accounts.get(user_id)
        if account is None or account.version >= version:
            return False
        self.accounts[user_id] = replace(account, email_index=email_index, version=version)
        self._hold(email_index, user_id)
        if account.email_index != email_index:
            await self.release_email(account.email_index, user_id)
        return True

    async def closed(self, user_id: str, *, version: int | None) -> bool:
        account = self.accounts.get(user_id)
        if account is None:
            return False
        changes = _closing({"status": account.status, "version": account.version}, version)
        if changes is None:
            return False
        self.accounts[user_id] = replace(account, **changes)
        return True

    async def credentials_changed(self, user_id: str, *, not_before: int) -> bool:
        account = self.accounts.get(user_id)
        if account is None:
            return False
        if account.tokens_not_before is not None and account.tokens_not_before >= not_before:
            return False
        self.accounts[user_id] = replace(account, tokens_not_before=not_before)
        return True

    async def delete_subject(self, user_id: str, session: AsyncClientSession | None = None) -> int:
        deleted = 1 if self.accounts.pop(user_id, None) is not None else 0
        self.created_at.pop(user_id, None)
        mine = [index for index, held in self.emails.items() if held.user_id == user_id]
        for index in mine:
            del self.emails[index]
        return deleted + len(mine)

    async def count_subject(self, user_id: str) -> int:
        held = sum(1 for reservation in self.emails.values() if reservation.user_id == user_id)
        return (1 if user_id in self.accounts else 0) + held
