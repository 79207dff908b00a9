"""Stand-in for another service, run as its own process by test_revocation_process.py.

It knows identity only through the public JWKS (a file) and `identity.events` (Kafka): a
`TokenVerifier` whose denylist is a `SubjectRevocations` fed by the kernel's consumer runtime.
It verifies one token in a loop and prints `accepted` once it verifies, then `revoked` when it
is refused because the subject was revoked (exit 0); anything else exits non-zero.

usage: verifier_process.py BOOTSTRAP TOPIC MONGO_URI DATABASE JWKS_FILE TOKEN_FILE TIMEOUT_S
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry
from pymongo import AsyncMongoClient

from mmgen.events.consumer import EventConsumer
from mmgen.events.revocation import SubjectRevocations
from mmgen.platform.auth import InvalidTokenError, StaticKeySet, TokenVerifier


async def main(argv: list[str], jwks: dict, token: str) -> int:
    bootstrap, topic, mongo_uri, database, _, _, timeout = argv
    client: AsyncMongoClient = AsyncMongoClient(mongo_uri, tz_aware=True)
    db = client[database]
    revocations = SubjectRevocations(db, negative_ttl_s=0.1)
    broker = KafkaBroker(bootstrap, logger=None)
    consumer: EventConsumer = EventConsumer(broker, db, registry=CollectorRegistry())
    revocations.subscribe(
        consumer,
        topic,
        group_id=f"verifier-{database}",
        session_timeout_ms=2000,
        heartbeat_interval_ms=500,
    )
    await broker.start()
    verifier = TokenVerifier(
        StaticKeySet.from_jwks(jwks), audience="projects", denylist=revocations
    )
    accepted = False
    loop = asyncio.get_running_loop()
    deadline = loop.time() + float(timeout)
    try:
        while loop.time() < deadline:
            try:
                await verifier.verify(token)
            except InvalidTokenError as exc:
                if accepted and exc.reason == "subject revoked":
                    print("revoked", flush=True)
                    return 0
                print(f"refused: {exc.reason}", flush=True)
                return 2
            if not accepted:
                print("accepted", flush=True)
                accepted = True
            await asyncio.sleep(0.05)
        print("timeout", flush=True)
        return 3
    finally:
        await broker.stop()
        await client.close()


if __name__ == "__main__":
    args = sys.argv[1:]
    jwks = json.loads(Path(args[4]).read_text())
    token = Path(args[5]).read_text().strip()
    sys.exit(asyncio.run(main(args, jwks, token)))
