"""Sign-in attempts per account and per client address: taken before the password is checked,
then spaced by growing delays — never a lock.

Each attempt first takes one unit on every key (`acct:<email index>`, `addr:<hmac of the
address>`) with an atomic compare-and-set, and only then is the password hashed: fifty parallel
wrong passwords find the counter already taken and are refused without hashing. A key may take
`limit` attempts freely; past that, each further attempt must wait `delay_base * 2^(n - limit)`
(at most `delay_max`) after the previous one. A refused attempt changes nothing, so an attacker
cannot push the wait further by asking; a right password clears the account's counter and gives
the address its unit back. A counter starts again after `window` without attempts.

Why delays and not a lock: a lock on the account lets anyone who knows an email keep its owner
out; with delays the owner signs in once the current delay has passed after an attacker's burst
(seconds after a short burst, at most `delay_max` under a sustained one), while guessing stays
bounded to roughly `limit + log2(delay_max / delay_base)` attempts, then one per `delay_max`.
The account key also counts attempts from every address, so spreading guesses over many
addresses gains nothing. Keys are keyed hashes, so the counters hold neither emails nor
addresses; unknown emails count like known ones, so the throttle does not reveal which accounts
exist.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from mmgen.events.envelope import normalize_time
from mmgen.identity.domain.errors import LoginThrottledError

Clock = Callable[[], datetime]

#: Compare-and-set rounds one attempt may lose before it is refused (fail closed).
MAX_ROUNDS = 50


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ThrottleLimits:
    #: A key's counter starts again after this long without attempts.
    window: timedelta
    max_per_account: int
    max_per_address: int
    delay_base: timedelta = timedelta(seconds=2)
    delay_max: timedelta = timedelta(minutes=15)

    def limit(self, key: str) -> int:
        return self.max_per_account if key.startswith("acct:") else self.max_per_address

    def delay(self, key: str, count: int) -> timedelta:
        """How long after the previous attempt the next one may come, with `count` taken."""
        over = count - self.limit(key)
        if over < 0:
            return timedelta(0)
        return min(self.delay_base * 2 ** min(over, 32), self.delay_max)

    def wait(self, key: str, count: int, last_at: datetime, now: datetime) -> float:
        """Seconds before `key` may take another attempt (0: now)."""
        return max(0.0, (normalize_time(last_at) + self.delay(key, count) - now).total_seconds())

    def fresh(self, last_at: datetime, now: datetime) -> bool:
        """The counter is over: no attempt for a whole window."""
        return normalize_time(last_at) + self.window <= now


class LoginThrottle(Protocol):
    """Port of the sign-in attempt counters."""

    async def acquire(self, keys: list[str]) -> None:
        """Take one attempt on every key, or `LoginThrottledError` (with the seconds to wait)
        and nothing taken."""
        ...

    async def succeeded(self, keys: list[str]) -> None:
        """The attempt was right: the account's counter is cleared, the address's unit given
        back (a sign-in is no failure)."""
        ...

    async def delete_keys(
        self, keys: list[str], session: AsyncClientSession | None = None
    ) -> int: ...


def _refuse(wait: float) -> LoginThrottledError:
    return LoginThrottledError(max(1, math.ceil(wait)))


@dataclass
class _Taken:
    """One unit taken on `key`: what was there before, and the version we left."""

    key: str
    previous: dict[str, Any] | None
    version: int


class MongoLoginThrottle:
    """Collection `login_failures`: `{_id: key, count, last_at, v, expires_at}` (TTL index).

    `v` is a version: every change is a compare-and-set on it, so two attempts never both take
    the last free unit.
    """

    def __init__(self, db: AsyncDatabase[Any], limits: ThrottleLimits) -> None:
        self.failures = db["login_failures"]
        self.limits = limits

    async def ensure_indexes(self) -> None:
        await self.failures.create_index("expires_at", expireAfterSeconds=0, name="expiry")

    async def acquire(self, keys: list[str]) -> None:
        taken: list[_Taken] = []
        try:
            for key in keys:
                taken.append(await self._take(key))
        except LoginThrottledError:
            for unit in reversed(taken):
                await self._give_back(unit)
            raise

    async def _take(self, key: str) -> _Taken:
        for _ in range(MAX_ROUNDS):
            doc = await self.failures.find_one({"_id": key})
            now = _now()  # after the read: never before the last attempt it shows
            expires = now + self.limits.window
            if doc is None:
                try:
                    await self.failures.insert_one(
                        {"_id": key, "count": 1, "last_at": now, "v": 1, "expires_at": expires}
                    )
                except DuplicateKeyError:
                    continue  # another attempt created it: read it again
                return _Taken(key, None, 1)
            last_at = normalize_time(doc.get("last_at") or doc.get("window_start") or now)
            count = 0 if self.limits.fresh(last_at, now) else int(doc.get("count", 0))
            wait = self.limits.wait(key, count, last_at, now)
            if wait > 0:
                raise _refuse(wait)
            version = int(doc.get("v", 0))
            matched = {"_id": key, "v": version} if "v" in doc else {"_id": key, "v": None}
            changed = await self.failures.update_one(
                matched,
                {
                    "$set": {
                        "count": count + 1,
                        "last_at": now,
                        "v": version + 1,
                        "expires_at": expires,
                    },
                    "$unset": {"window_start": ""},
                },
            )
            if changed.modified_count == 1:
                return _Taken(key, doc, version + 1)
        raise _refuse(1)  # too contended to decide: refuse rather than let one through

    async def _give_back(self, unit: _Taken) -> None:
        """Undo a take: restore what was there if nothing moved since, else count one less."""
        if unit.previous is None:
            undone = await self.failures.delete_one({"_id": unit.key, "v": unit.version})
            if undone.deleted_count:
                return
        else:
            restored = {**unit.previous, "v": unit.version + 1}
            replaced = await self.failures.replace_one(
                {"_id": unit.key, "v": unit.version}, restored
            )
            if replaced.modified_count:
                return
        await self.failures.update_one(
            {"_id": unit.key, "count": {"$gt": 0}}, {"$inc": {"count": -1, "v": 1}}
        )

    async def succeeded(self, keys: list[str]) -> None:
        account, others = keys[0], keys[1:]
        await self.failures.delete_one({"_id": account})
        for key in others:
            await self.failures.update_one(
                {"_id": key, "count": {"$gt": 0}}, {"$inc": {"count": -1, "v": 1}}
            )

    async def delete_keys(self, keys: list[str], session: AsyncClientSession | None = None) -> int:
        result = await self.failures.delete_many({"_id": {"$in": keys}}, session=session)
        return result.deleted_count


@dataclass
class _Counter:
    count: int
    last_at: datetime


@dataclass
class InMemoryLoginThrottle:
    """The same counters in a dictionary, for unit tests; `clock` moves time."""

    limits: ThrottleLimits
    clock: Clock = _now
    failures: dict[str, _Counter] = field(default_factory=dict)

    def _counter(self, key: str, now: datetime) -> _Counter:
        found = self.failures.get(key)
        if found is None or self.limits.fresh(found.last_at, now):
            return _Counter(0, now)
        return found

    async def acquire(self, keys: list[str]) -> None:
        now = self.clock()
        waits = [
            self.limits.wait(key, counter.count, counter.last_at, now)
            for key in keys
            if (counter := self._counter(key, now)).count
        ]
        if max(waits, default=0.0) > 0:
            raise _refuse(max(waits))
        for key in keys:  # no await since the check: nothing else ran in between
            self.failures[key] = _Counter(self._counter(key, now).count + 1, now)

    async def succeeded(self, keys: list[str]) -> None:
        self.failures.pop(keys[0], None)
        for key in keys[1:]:
            if key in self.failures and self.failures[key].count > 0:
                self.failures[key].count -= 1

    async def delete_keys(self, keys: list[str], session: AsyncClientSession | None = None) -> int:
        present = [key for key in keys if key in self.failures]
        for key in present:
            del self.failures[key]
        return len(present)
