"""Readiness checks run concurrently, each bounded by its timeout."""

from __future__ import annotations

import asyncio

from mmgen.platform import ReadinessCheck
from mmgen.platform.health import run_checks


async def test_results_name_each_check_and_why_it_failed() -> None:
    never = asyncio.Event()

    async def ok() -> None:
        return None

    async def hangs() -> None:
        await never.wait()

    async def raises() -> None:
        raise ConnectionRefusedError("10.1.2.3:27017 refused")

    async def says_no() -> bool:
        return False

    results = await run_checks(
        [
            ReadinessCheck("fine", ok),
            ReadinessCheck("hanging", hangs, timeout=0.05),
            ReadinessCheck("refusing", raises),
            ReadinessCheck("negative", says_no),
        ],
        default_timeout=1.0,
    )
    by_name = {r.name: r for r in results}
    assert by_name["fine"].ok and by_name["fine"].detail == "ok"
    assert not by_name["hanging"].ok and by_name["hanging"].detail == "timed out after 0.05s"
    assert not by_name["refusing"].ok
    assert by_name["refusing"].detail == "failed: ConnectionRefusedError"
    assert "10.1.2.3" not in by_name["refusing"].detail  # addresses stay in the server log
    assert not by_name["negative"].ok


async def test_a_passing_check_can_say_why_it_is_degraded() -> None:
    """A string result passes and is shown as the detail (bounded), e.g. gaps under repair."""

    async def gaps() -> str:
        return "identity: 3 missing after 41"

    async def chatty() -> str:
        return "x" * 10_000

    async def empty() -> str:
        return ""

    results = await run_checks(
        [
            ReadinessCheck("gaps", gaps),
            ReadinessCheck("chatty", chatty),
            ReadinessCheck("empty", empty),
        ],
        default_timeout=1.0,
    )
    by_name = {r.name: r for r in results}
    assert by_name["gaps"].ok and by_name["gaps"].detail == "identity: 3 missing after 41"
    assert by_name["chatty"].ok and len(by_name["chatty"].detail) == 500
    assert by_name["empty"].ok and by_name["empty"].detail == "ok"
