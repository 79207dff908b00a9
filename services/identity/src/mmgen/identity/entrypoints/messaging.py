"""identity's messaging inside its process: topics, the outbox relay, the commands consumer.

Started and stopped by the app's lifespan. Topics are created explicitly at every start (the
local broker forgets them on restart; auto-created ones get the wrong partition count). The
relay publishes the event store to `identity.events`; beside it the republish listener serves
the audit projector's gap-repair requests (`audit.republish`: publish a `producer_seq` range of
the store again) — without it, events a broker lost never reach the audit log. The consumer
applies `retention.commands` (`EraseSubject`) through the kernel's idempotent runtime.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry

from mmgen.events.consumer import EventConsumer, HandlerContext, RetryPolicy
from mmgen.events.envelope import Envelope
from mmgen.events.relay import Relay, RelaySettings
from mmgen.events.republish import RepublishListener, republish_topic
from mmgen.events.topics import TopicPartitionMismatchError, dlq_topic, ensure_topics
from mmgen.identity.bootstrap import Identity
from mmgen.platform import Environment

log = logging.getLogger(__name__)

COMMANDS_GROUP = "identity-retention-commands"


class Messaging:
    """The relay task and the FastStream broker of one identity process."""

    def __init__(self, identity: Identity, registry: CollectorRegistry) -> None:
        self.identity = identity
        self.settings = identity.settings
        self.registry = registry
        self.relay: Relay | None = None
        self.relay_task: asyncio.Task[None] | None = None
        self.broker: KafkaBroker | None = None
        self.republish: RepublishListener | None = None

    async def start(self) -> None:
        s = self.settings
        topics = [
            s.events_topic,
            dlq_topic(s.events_topic),
            s.commands_topic,
            dlq_topic(s.commands_topic),
            republish_topic(s.topic_prefix),
        ]
        try:
            await ensure_topics(s.kafka_bootstrap, topics, partitions=s.topic_partitions)
        except TopicPartitionMismatchError:
            if s.environment is Environment.production:
                raise
            # The local broker forgets topics on restart and a client may have re-created one
            # with its own count; keep a development stack usable, and say so loudly.
            log.error("topics exist with another partition count; per-key order may differ")
            await ensure_topics(
                s.kafka_bootstrap, topics, partitions=s.topic_partitions, check_partitions=False
            )
        self.relay = Relay(
            self.identity.adapters.store,
            self.identity.adapters.db,
            s.kafka_bootstrap,
            s.events_topic,
            settings=RelaySettings(
                idle_wait_s=s.relay_idle_wait_seconds,
                lease_ttl_s=s.relay_lease_ttl_seconds,
            ),
            registry=self.registry,
        )
        self.relay_task = asyncio.create_task(self.relay.run(), name="identity-relay")
        self.republish = RepublishListener(
            self.relay,
            s.kafka_bootstrap,
            topic_prefix=s.topic_prefix,
            session_timeout_ms=s.consumer_session_timeout_ms,
            heartbeat_interval_ms=s.consumer_heartbeat_interval_ms,
        )
        broker = KafkaBroker(s.kafka_bootstrap, logger=None, client_id="identity")
        consumer: EventConsumer[Envelope] = EventConsumer(
            broker, self.identity.adapters.db, registry=self.registry, retry=RetryPolicy()
        )
        consumer.subscribe(
            s.commands_topic,
            handler=self.on_command,
            group_id=COMMANDS_GROUP,
            session_timeout_ms=s.consumer_session_timeout_ms,
            heartbeat_interval_ms=s.consumer_heartbeat_interval_ms,
        )
        self.broker = broker
        # Both join a consumer group (about half the session timeout each): in parallel.
        await asyncio.gather(self.republish.start(), broker.start())

    async def on_command(self, command: Envelope, ctx: HandlerContext) -> None:
        """`retention.commands` → erasure (read-model deletes join the consumer's transaction)."""
        await self.identity.erasure.handle_command(command, ctx.session)

    async def stop(self) -> None:
        if self.broker is not None:
            with contextlib.suppress(Exception):
                await self.broker.stop()
            self.broker = None
        if self.republish is not None:
            with contextlib.suppress(Exception):
                await self.republish.stop()
            self.republish = None
        if self.relay is not None and self.relay_task is not None:
            await self.relay.stop()
            try:
                await asyncio.wait_for(self.relay_task, timeout=10)
            except (TimeoutError, asyncio.CancelledError):
                self.relay_task.cancel()
            except Exception:  # the relay logged its own failure
                log.exception("relay ended with an error")
            self.relay_task = None

    # --- readiness ---------------------------------------------------------------------------

    async def relay_ready(self) -> bool:
        return self.relay_task is not None and not self.relay_task.done()

    async def consumers_ready(self) -> bool:
        if self.broker is None:
            return False
        return bool(await self.broker.ping(timeout=1.0))

    def status(self) -> dict[str, Any]:
        relay = self.relay.status if self.relay else None
        return {
            "relay": {
                "holds_lease": relay.holds_lease if relay else False,
                "checkpoint": relay.checkpoint if relay else 0,
                "hole_at": relay.hole_at if relay else None,
            }
        }
