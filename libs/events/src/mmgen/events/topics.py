"""Kafka topic names of the platform and their explicit, idempotent creation at start-up.

Why explicit: auto-created topics get whatever partition count the creating client implies
(Tansu: 4 from a producer, 1 from a FastStream subscriber), and the key → partition mapping,
hence per-subject ordering, depends on that count. The local broker is memory only, so a
service calls `ensure_topics` at every start (and again after a broker restart).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from mmgen.events.errors import EventsError
from mmgen.events.kafka_security import PLAINTEXT, KafkaSecurity

log = logging.getLogger(__name__)

EVENTS_SUFFIX = ".events"
DLQ_SUFFIX = ".dlq"
RETENTION_COMMANDS = "retention.commands"
AUDIT_LOG = "audit.log"
DEFAULT_PARTITIONS = 6

# Kafka error codes we treat as "the topic is already there".
_TOPIC_ALREADY_EXISTS = 36
_NO_ERROR = 0


class TopicError(EventsError):
    """Topics could not be created or do not have the required shape."""


class TopicPartitionMismatchError(TopicError):
    """An existing topic has another partition count than the one the platform fixes."""


@dataclass(frozen=True)
class Topics:
    """Topic names, with an optional prefix so tests (or tenants) never share a topic.

    The prefix is prepended verbatim: `Topics("t1a2.").events("identity")` is
    `"t1a2.identity.events"`.
    """

    prefix: str = ""

    def events(self, service: str) -> str:
        """`<prefix><service>.events`: the topic a service's relay publishes to."""
        return f"{self.prefix}{service}{EVENTS_SUFFIX}"

    @property
    def retention_commands(self) -> str:
        return f"{self.prefix}{RETENTION_COMMANDS}"

    @property
    def audit_log(self) -> str:
        return f"{self.prefix}{AUDIT_LOG}"

    def events_pattern(self) -> str:
        """Regex matching every `<prefix><service>.events` topic and nothing else.

        The audit projector subscribes with it; it must not match dead-letter topics
        (`x.events.dlq`) nor other prefixes' topics.
        """
        return f"^{re.escape(self.prefix)}[A-Za-z0-9_-]+{re.escape(EVENTS_SUFFIX)}$"

    def events_producer(self, topic: str) -> str | None:
        """The service whose events topic `topic` is (`<prefix><service>.events`), else None:
        the only producer whose events may arrive on it."""
        if not re.fullmatch(self.events_pattern(), topic):
            return None
        return topic[len(self.prefix) : -len(EVENTS_SUFFIX)]


def dlq_topic(topic: str) -> str:
    """`<topic>.dlq`: where a consumer of `topic` parks messages it cannot process."""
    return f"{topic}{DLQ_SUFFIX}"


def service_topics(service: str, prefix: str = "") -> list[str]:
    """The topics a service needs at start-up: its events topic and that topic's DLQ."""
    events = Topics(prefix).events(service)
    return [events, dlq_topic(events)]


async def ensure_topics(
    bootstrap: str,
    names: Iterable[str],
    partitions: int = DEFAULT_PARTITIONS,
    *,
    replication_factor: int = 1,
    timeout_s: float = 30.0,
    check_partitions: bool = True,
    security: KafkaSecurity = PLAINTEXT,
) -> dict[str, int]:
    """Create `names` with a fixed partition count; topics that exist are left as they are.

    Idempotent (Kafka error 36, "already exists", is success), so it is safe at every start-up
    and after a broker restart. With `check_partitions`, a topic found with another count is an
    error: silently living with it would change which partition each key lands on.
    Returns each topic's partition count.
    """
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return {}
    if partitions < 1:
        raise TopicError(f"partitions must be >= 1, got {partitions}")
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=int(timeout_s * 1000),
        **security.client_config(),
    )
    await asyncio.wait_for(admin.start(), timeout_s)
    try:
        response = await admin.create_topics(
            [NewTopic(name, partitions, replication_factor) for name in wanted],
            timeout_ms=int(timeout_s * 1000),
        )
        for entry in response.topic_errors:
            name, code = entry[0], entry[1]
            if code not in (_NO_ERROR, _TOPIC_ALREADY_EXISTS):
                message = entry[2] if len(entry) > 2 else ""
                raise TopicError(f"creating topic {name!r} failed: error {code} {message}")
        counts = await _partition_counts(admin, wanted, timeout_s)
    finally:
        await admin.close()
    if check_partitions:
        wrong = {name: n for name, n in counts.items() if n != partitions}
        if wrong:
            raise TopicPartitionMismatchError(
                f"topics exist with another partition count than {partitions}: {wrong}"
            )
    log.info("topics ready: %s", counts)
    return counts


async def _partition_counts(
    admin: AIOKafkaAdminClient, names: list[str], timeout_s: float
) -> dict[str, int]:
    """Partition count per topic, polling briefly: metadata can lag just after creation."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        described = await admin.describe_topics(names)
        counts = {
            d["topic"]: len(d.get("partitions") or [])
            for d in described
            if d.get("error_code", 0) == _NO_ERROR
        }
        if all(counts.get(name, 0) > 0 for name in names):
            return {name: counts[name] for name in names}
        if asyncio.get_running_loop().time() > deadline:
            missing = [name for name in names if counts.get(name, 0) == 0]
            raise TopicError(f"topics not visible after creation: {missing}")
        await asyncio.sleep(0.1)
