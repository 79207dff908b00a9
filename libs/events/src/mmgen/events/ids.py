"""UUIDv7 event ids (RFC 9562): time-ordered, so ids sort by creation and index well.

Python 3.11's `uuid` module has no `uuid7`; this generator is monotonic within one process
(a 12-bit counter in `rand_a` orders ids minted in the same millisecond).
"""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = -1
_counter = 0


def uuid7() -> uuid.UUID:
    """A new UUIDv7; strictly increasing within this process."""
    global _last_ms, _counter
    with _lock:
        now_ms = time.time_ns() // 1_000_000
        if now_ms > _last_ms:
            _last_ms = now_ms
            _counter = int.from_bytes(os.urandom(2), "big") & 0x3FF  # room to count up
        else:
            _counter += 1
            if _counter > 0xFFF:  # 4096 ids in one ms: borrow the next millisecond
                _last_ms += 1
                _counter = 0
        ms, counter = _last_ms, _counter
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= counter << 64
    value |= 0b10 << 62
    value |= rand_b
    return uuid.UUID(int=value)


def new_event_id() -> str:
    """A new event id in its canonical text form (what envelopes, Kafka and Mongo carry)."""
    return str(uuid7())


def uuid7_time_ms(value: uuid.UUID | str) -> int:
    """The Unix time in milliseconds encoded in a UUIDv7."""
    u = value if isinstance(value, uuid.UUID) else uuid.UUID(value)
    return u.int >> 80
