"""Failed-login counters per account and per client address, in fixed windows.

Keys are keyed hashes (`acct:<email index>`, `addr:<hmac of the address>`), so the counters hold
neither emails nor addresses. Unknown emails count like known ones: the throttle must not reveal
which accounts exist.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from mmgen.identity.domain.errors import LoginThrottledError

Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ThrottleLimits:
    window: timedelta
    max_per_account: int
    max_per_address: int

    def limit(self, key: str) -> int:
        return self.max_per_account if key.startswith("acct:") else self.max_per_address

    def wait(self, key: str, count: int, window_start: datetime, now: datetime) -> float:
        """Seconds `key` must wait with `count` failures in its window (0: not throttled)."""
        ends = _utc(window_start) + self.window
        return (ends - now).total_seconds() if count >= self.limit(key) and ends > now else 0.0


class LoginThrottle(Protocol):
    """Port of the failed-login counters."""

    async def check(self, keys: list[str]) -> None:
        """`LoginThrottledError` (with the seconds to wait) if any key is over its limit."""
        ...

    async def record_failure(self, keys: list[str]) -> None: ...

    async def clear(self, key: str) -> None: ...

    async def delete_keys(
        self, keys: list[str], session: AsyncClientSession | None = None
    ) -> int: ...


def _refuse(wait: float) -> None:
    if wait > 0:
        raise LoginThrottledError(math.ceil(wait))


class MongoLoginThrottle:
    """Collection `login_failures`: `{_id: key, count, window_start, expires_at}` (TTL)."""

    def __init__(self, db: AsyncDatabase[Any], limits: ThrottleLimits) -> None:
        self.failures = db["login_failures"]
        self.limits = limits

    async def ensure_indexes(self) -> None:
        await self.failures.create_index("expires_at", expireAfterSeconds=0, name="expiry")

    async def check(self, keys: list[str]) -> None:
        now = _now()
        waits = [
            self.limits.wait(str(doc["_id"]), doc["count"], doc["window_start"], now)
            async for doc in self.failures.find({"_id": {"$in": keys}})
        ]
        _refuse(max(waits, default=0.0))

    async def record_failure(self, keys: list[str]) -> None:
        now = _now()
        window = self.limits.window
        for key in keys:
            # Start a new window if the old one ended; otherwise count within it.
            await self.failures.delete_one({"_id": key, "window_start": {"$lte": now - window}})
            await self.failures.update_one(
                {"_id": key},
                {
                    "$inc": {"count": 1},
                    "$setOnInsert": {"window_start": now, "expires_at": now + window},
                },
                upsert=True,
            )

    async def clear(self, key: str) -> None:
        await self.failures.delete_one({"_id": key})

    async def delete_keys(self, keys: list[str], session: AsyncClientSession | None = None) -> int:
        result = await self.failures.delete_many({"_id": {"$in": keys}}, session=session)
        return result.deleted_count


class InMemoryLoginThrottle:
    """The same counters in a dictionary, for unit tests; `clock` moves time."""

    def __init__(self, limits: ThrottleLimits, *, clock: Clock = _now) -> None:
        self.limits = limits
        self.clock = clock
        self.failures: dict[str, tuple[int, datetime]] = {}

    async def check(self, keys: list[str]) -> None:
        now = self.clock()
        waits = [
            self.limits.wait(key, *self.failures[key], now) for key in keys if key in self.failures
        ]
        _refuse(max(waits, default=0.0))

    async def record_failure(self, keys: list[str]) -> None:
        now = self.clock()
        for key in keys:
            count, start = self.failures.get(key, (0, now))
            if start <= now - self.limits.window:
                count, start = 0, now
            self.failures[key] = (count + 1, start)

    async def clear(self, key: str) -> None:
        self.failures.pop(key, None)

    async def delete_keys(self, keys: list[str], session: AsyncClientSession | None = None) -> int:
        present = [key for key in keys if key in self.failures]
        for key in present:
            del self.failures[key]
        return len(present)
