"""Liveness and readiness: `/healthz` always answers, `/readyz` runs named checks with timeouts.

A check is an async callable that raises (or returns False) when its dependency is not usable;
a passing check may return a short string, shown as its detail (say, open gaps being repaired),
so operators see a degraded-but-serving state without the probe failing. All checks run
concurrently, each under its own timeout, so one hanging dependency cannot hang the probe.
The 503 names the failing checks and why (exception type or timeout only: the full error goes
to the log, not to whoever can reach the probe).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from mmgen.platform.problems import problem_response

logger = logging.getLogger("mmgen.platform.health")

MAX_DETAIL_CHARS = 500  # a detail is a summary for the probe, not a report

CheckFn = Callable[[], Awaitable[bool | str | None]]


@dataclass(frozen=True)
class ReadinessCheck:
    """A named readiness probe; `timeout=None` uses the service's `readiness_timeout_seconds`."""

    name: str
    check: CheckFn
    timeout: float | None = None


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


async def run_check(check: ReadinessCheck, default_timeout: float) -> CheckResult:
    timeout = check.timeout if check.timeout is not None else default_timeout
    try:
        outcome = await asyncio.wait_for(check.check(), timeout=timeout)
    except TimeoutError:
        logger.warning("readiness check timed out", extra={"check": check.name, "timeout": timeout})
        return CheckResult(check.name, False, f"timed out after {timeout:g}s")
    except Exception as exc:
        logger.warning(
            "readiness check failed",
            exc_info=exc,
            extra={"check": check.name},
        )
        return CheckResult(check.name, False, f"failed: {type(exc).__name__}")
    if outcome is False:
        return CheckResult(check.name, False, "failed")
    if isinstance(outcome, str) and outcome:
        return CheckResult(check.name, True, outcome[:MAX_DETAIL_CHARS])
    return CheckResult(check.name, True, "ok")


async def run_checks(checks: Sequence[ReadinessCheck], default_timeout: float) -> list[CheckResult]:
    return list(await asyncio.gather(*(run_check(c, default_timeout) for c in checks)))


def mongo_check(
    client: Any, *, name: str = "database", timeout: float | None = None
) -> ReadinessCheck:
    """`ping` on a `pymongo.AsyncMongoClient` (any client whose `admin.command` is awaitable)."""

    async def ping() -> None:
        await client.admin.command("ping")

    return ReadinessCheck(name, ping, timeout)


def kafka_check(
    bootstrap: str,
    *,
    name: str = "broker",
    timeout: float | None = None,
    client_options: Mapping[str, Any] | None = None,
) -> ReadinessCheck:
    """A Kafka metadata round-trip (aiokafka) to `bootstrap`, on a short-lived client
    (`client_options`: the service's security protocol, SASL credentials, TLS context)."""

    async def metadata() -> None:
        from aiokafka.client import AIOKafkaClient  # imported lazily: only services with Kafka

        timeout_ms = int((timeout or 2.0) * 1000)
        client = AIOKafkaClient(
            bootstrap_servers=bootstrap,
            request_timeout_ms=timeout_ms,
            connections_max_idle_ms=timeout_ms * 5,
            client_id="mmgen-readiness",
            **(client_options or {}),
        )
        try:
            await client.bootstrap()
            if not client.cluster.brokers():
                raise ConnectionError("the broker's metadata lists no brokers")
        finally:
            await client.close()

    return ReadinessCheck(name, metadata, timeout)


def health_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", name="healthz", summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @router.get(
        "/readyz",
        name="readyz",
        summary="Readiness: every dependency check passes",
        responses={
            503: {"description": "A check failed", "content": {"application/problem+json": {}}}
        },
    )
    async def readyz(request: Request) -> JSONResponse:
        checks: list[ReadinessCheck] = list(getattr(request.app.state, "readiness_checks", []))
        default_timeout: float = getattr(request.app.state, "readiness_timeout", 2.0)
        results = await run_checks(checks, default_timeout)
        summary = {result.name: result.detail for result in results}
        failing = [result.name for result in results if not result.ok]
        if failing:
            return problem_response(
                request,
                status=503,
                slug="not-ready",
                title="Service not ready",
                detail="failing checks: " + ", ".join(failing),
                extensions={"checks": summary, "failing": failing},
            )
        return JSONResponse({"status": "ready", "checks": summary})

    return router
