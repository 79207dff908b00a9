"""AggregatingDenialRecorder: authenticated refusals one by one, anonymous ones sampled."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from mmgen.platform import AggregatingDenialRecorder, DenialReason, InMemoryDenialRecorder
from mmgen.platform.auth import Principal, Role


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def request(method: str = "GET", route: str = "/things/{thing_id}") -> Request:
    class Route:
        path_format = route

    scope: dict[str, Any] = {
        "type": "http",
        "method": method,
        "path": "/things/1",
        "headers": [],
        "route": Route(),
        "query_string": b"",
    }
    return Request(scope)


UNAUTHENTICATED = DenialReason("unauthenticated", 401, "a bearer token is required")
INVALID = DenialReason("invalid-token", 401, "the access token is invalid", reason="bad signature")


async def test_anonymous_refusals_are_one_record_per_key_and_window() -> None:
    inner, clock = InMemoryDenialRecorder(), Clock()
    recorder = AggregatingDenialRecorder(inner, window=60, clock=clock)
    for _ in range(1000):
        await recorder.record(None, request(), UNAUTHENTICATED)
        await recorder.record(None, request(), INVALID)
        await recorder.record(None, request("POST"), INVALID)
        await recorder.record(None, request(route="/other"), INVALID)
    assert [(m, r.code, r.occurrences) for _, m, _, r in inner.denials] == [
        ("GET", "unauthenticated", 1),
        ("GET", "invalid-token", 1),
        ("POST", "invalid-token", 1),
        ("GET", "invalid-token", 1),
    ]
    assert inner.denials[1][3].reason == "bad signature"
    assert recorder.suppressed() == 4 * 999

    clock.now += 59.9
    await recorder.record(None, request(), INVALID)
    assert len(inner.denials) == 4
    clock.now += 0.1  # the window is over: the next one carries those counted meanwhile
    await recorder.record(None, request(), INVALID)
    assert len(inner.denials) == 5
    assert inner.denials[-1][3].occurrences == 1 + 1000
    assert recorder.suppressed() == 3 * 999


async def test_authenticated_refusals_are_each_recorded() -> None:
    inner = InMemoryDenialRecorder()
    recorder = AggregatingDenialRecorder(inner, window=60, clock=Clock())
    staff = Principal("s-1", Role.staff)
    reason = DenialReason("purpose-required", 403, "declare a purpose")
    for _ in range(50):
        await recorder.record(staff, request(), reason)
    assert len(inner.denials) == 50
    assert all(p is staff and r.occurrences == 1 for p, _, _, r in inner.denials)


async def test_unknown_methods_share_one_key() -> None:
    inner = InMemoryDenialRecorder()
    recorder = AggregatingDenialRecorder(inner, window=60, clock=Clock())
    for n in range(100):
        await recorder.record(None, request(method=f"X{n}"), UNAUTHENTICATED)
    assert len(inner.denials) == 1
