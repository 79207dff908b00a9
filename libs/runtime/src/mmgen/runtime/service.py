"""`ServiceRuntime`: the moving parts every service runs, started and stopped in one order.

A service's `bootstrap()` builds one (no I/O) and registers on it what is particular to the
service: inbox handlers (`on`), the erasure participant (`erasure`), read-model projections
(`projection`), index makers (`on_prepare`) and extra components (`component`). The lifespan
then runs, in this order, and stops in reverse:

1. the event kernel's indexes and the service's own (`on_prepare`);
2. topics: its events topic and DLQ, the republish topic, every topic its inbox reads (and
   their DLQs) — all with the platform's one partition count, since the local broker forgets
   topics on restart and auto-created ones get another count;
3. read-model projections, each a checkpointed `Tailer` over the event store (a crash between
   an append and a read-model write is repaired on the next start or round);
4. the key-cache watchers: the keystore's own (`watch_erasures`: every erasure marker, by any
   replica, evicts the cached key within `erasure_poll_seconds`; cached keys are not trusted
   while it cannot confirm) and a per-process tailer of the service's own store that evicts a
   subject's key as soon as the service's `SubjectErased` is appended;
5. the outbox relay under its lease (woken by a change stream), with its republish listener
   and its head announcer (`events.heads`: the last published `producer_seq`, so a consumer
   learns of events a broker lost after the last one it received); events of the types given
   to `commands` are copied to their commands topic in the same round (retention's
   `EraseSubject` reaches `retention.commands` and `retention.events`);
6. the inbox, dispatching by `{event_type: handler}`: two subscriptions (each its own group
   join, each one message at a time) — retention's commands on theirs, other services'
   events on the other — so a long erasure never holds up the events read meanwhile
   (retention's own `EraseSubject` and every service's `SubjectErased` reports of it); a
   command's erasure is done before its transaction, which only answers (`erasure.py`);
7. extra components (e.g. consent's audit log).

Readiness covers the database, the broker, the relay, the inbox, and every projection's lag.
In memory (a kernel over fakes, no database), only steps 1, 3 and 7 run: unit tests of the
service layer need no broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from mmgen.events.consumer import EventConsumer, HandlerContext, RetryPolicy
from mmgen.events.envelope import Envelope
from mmgen.events.heads import HeadAnnouncer, heads_topic
from mmgen.events.kernel import EventKernel, mongo_kernel
from mmgen.events.registry import EventRegistry
from mmgen.events.relay import PRODUCER_RECOVERY_CONFIG, Relay, RelaySettings, TopicCopy
from mmgen.events.republish import RepublishListener, republish_topic
from mmgen.events.revocation import TOKEN_EVENT_TYPES, SubjectRevocations
from mmgen.events.tailer import (
    MemoryCheckpoint,
    MongoCheckpoint,
    StoreSource,
    Tailer,
    TailerMetrics,
)
from mmgen.events.topics import (
    RETENTION_COMMANDS,
    TopicPartitionMismatchError,
    Topics,
    dlq_topic,
    ensure_topics,
)
from mmgen.platform import Environment, ReadinessCheck, kafka_check, mongo_check
from mmgen.platform.auth import JwksKeySet, KeySet
from mmgen.platform.errors import ConfigurationError
from mmgen.runtime.commands import (
    CommandKeysUnavailableError,
    CommandVerifier,
    pinned_command_keys,
    warm_command_keys,
)
from mmgen.runtime.contract import SUBJECT_ERASED, StandardEvents, register_standard_events
from mmgen.runtime.erasure import (
    COMMAND_TYPES,
    ErasureCommands,
    ErasureParticipant,
    MongoOutcomeMemo,
    refused_counter,
)
from mmgen.runtime.settings import EventServiceSettings
from mmgen.runtime.trail import AuditTrail

log = logging.getLogger(__name__)

InboxHandler = Callable[[Envelope, HandlerContext], Awaitable[None]]
Apply = Callable[[Envelope], Awaitable[None]]
PROJECTION_STATE = "projection_state"
ERASURE_OUTCOMES = "erasure_outcomes"


class Component(Protocol):
    """Something the service runs beside the runtime's parts (started last, stopped first)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class Projection:
    """A named read-model projection: `apply` is idempotent, `reset` empties its read models."""

    name: str
    apply: Apply
    reset: Callable[[], Awaitable[None]] | None = None


@dataclass(frozen=True)
class DocumentedTopic:
    """A topic a component reads or writes beside the runtime's parts (for the AsyncAPI)."""

    topic: str
    reads: bool
    description: str


class ServiceRuntime:
    """The plumbing of one service process (see the module docstring for the order)."""

    def __init__(
        self,
        settings: EventServiceSettings,
        registry: EventRegistry,
        *,
        kernel: EventKernel | None = None,
        metrics_registry: CollectorRegistry | None = None,
        standard_event_versions: dict[str, int] | None = None,
    ) -> None:
        self.settings = settings
        self.name = settings.service_name
        self.registry = registry
        self.events: StandardEvents = register_standard_events(
            registry, self.name, versions=standard_event_versions
        )
        self.metrics_registry = metrics_registry or CollectorRegistry(auto_describe=True)
        self.client: AsyncMongoClient[Any] | None = None
        self.db: AsyncDatabase[Any] | None = None
        if kernel is None:
            self.client = AsyncMongoClient(settings.mongo_uri, tz_aware=True)
            self.db = self.client[settings.mongo_database]
            kernel = mongo_kernel(
                self.db,
                producer=self.name,
                registry=registry,
                keyring=settings.master_keyring(),
                key_cache_ttl_seconds=settings.key_cache_ttl_seconds,
            )
        if kernel.mapper.registry is not registry:
            raise ValueError("the kernel was built on another event registry")
        registry.check()  # the standard events, and any upcasters of theirs, are in it now
        self.kernel = kernel
        self.trail = AuditTrail(kernel.repository, self.events)
        self.topics = Topics(settings.topic_prefix)
        self.participant: ErasureParticipant | None = None
        self.revocations: SubjectRevocations | None = None
        self._handlers: dict[str, list[InboxHandler]] = {}
        self._projections: list[Projection] = []
        self._tailers: list[Tailer[Envelope]] = []
        self._prepare: list[Callable[[], Awaitable[None]]] = []
        self._components: list[Component] = []
        self._checks: list[ReadinessCheck] = []
        self._copies: list[TopicCopy] = []
        self.documented_topics: list[DocumentedTopic] = []
        self._tailer_metrics = TailerMetrics(self.metrics_registry)
        self.relay: Relay | None = None
        self.republish: RepublishListener | None = None
        self.heads: HeadAnnouncer | None = None
        self.broker: KafkaBroker | None = None
        self.consumer: EventConsumer[Envelope] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._erasure_commands: ErasureCommands | None = None
        self._closers: list[Callable[[], Awaitable[None]]] = []
        #: Retention's keys fetched over HTTP (fetched at start), when they are not pinned.
        self._command_jwks: JwksKeySet | None = None

    # --- what a bootstrap registers (no I/O) --------------------------------------------------

    @property
    def in_memory(self) -> bool:
        return self.db is None

    @property
    def repository(self) -> Any:
        return self.kernel.repository

    def on(self, event_type: str, handler: InboxHandler) -> None:
        """Handle `event_type` from the inbox (commands, or another service's events).

        Several parts of a service may need one event (identity's `AccountClosed` revokes
        tokens and closes a read model's account): each registers its handler, and they run
        in registration order, in the same consumer transaction. One handler twice is a
        wiring mistake.
        """
        handlers = self._handlers.setdefault(event_type, [])
        if handler in handlers:
            raise ValueError(f"{event_type} has this handler already")
        handlers.append(handler)

    def erasure(
        self, participant: ErasureParticipant, *, command_keys: KeySet | None = None
    ) -> ErasureCommands:
        """Obey retention's signed commands through `participant`; serve its export and
        footprint. `command_keys`: retention's own key set (retention checks its commands
        too); every other service reads them from settings (`retention_command_keys`, else
        `retention_jwks_url`, fetched at most once per `jwks_min_refresh_interval_seconds`)."""
        self.participant = participant
        memo = None if self.db is None else MongoOutcomeMemo(self.db[ERASURE_OUTCOMES])
        if command_keys is None:
            command_keys = self._command_keys()
        commands = ErasureCommands(
            participant,
            self.kernel.repository,
            self.events,
            CommandVerifier(command_keys),
            memo,
            refused_counter(self.metrics_registry),
        )
        self._erasure_commands = commands
        for event_type in COMMAND_TYPES:
            self.on(event_type, commands.handle)
        return commands

    def _command_keys(self) -> KeySet | None:
        s = self.settings
        if s.retention_command_keys:
            return pinned_command_keys(s.retention_command_keys)
        if s.retention_jwks_url:
            keys = JwksKeySet(
                s.retention_jwks_url,
                min_refresh_interval=s.jwks_min_refresh_interval_seconds,
                max_age=s.jwks_max_age_seconds,
            )
            self._closers.append(keys.aclose)
            self._command_jwks = keys
            return keys
        return None

    def revoke_tokens_from_identity(self) -> SubjectRevocations:
        """Refuse tokens of accounts identity closed or erased, and tokens issued before a
        password change or reset, as soon as identity's event is read."""
        if self.db is None:
            raise ValueError("token revocations need the service's database")
        self.revocations = SubjectRevocations(self.db)
        for event_type in sorted(TOKEN_EVENT_TYPES):
            self.on(event_type, self.revocations.handle)
        return self.revocations

    def projection(
        self, name: str, apply: Apply, *, reset: Callable[[], Awaitable[None]] | None = None
    ) -> Projection:
        """Keep a read model in step with the store: `apply` every event, in order, once a round.

        `apply` must be idempotent: request handlers may have applied the event already
        (read-your-writes), and a crash re-applies the round it interrupted.
        """
        projection = Projection(name, apply, reset)
        self._projections.append(projection)
        return projection

    def commands(self, event_types: Iterable[str], topic: str = RETENTION_COMMANDS) -> TopicCopy:
        """Publish the service's own events of `event_types` to `topic` as well (unprefixed).

        They stay events of the service's store: audited from its events topic like every
        event, with no break in `producer_seq`; the relay acks both sends before it moves on.
        """
        types = frozenset(event_types)
        foreign = sorted(t for t in types if t not in self.registry or t.split(".")[0] != self.name)
        if not types or foreign:
            raise ValueError(f"commands must be {self.name}'s own registered events: {foreign}")
        copy = TopicCopy(self.settings.topic(topic), types)
        if copy.topic == self.events_topic or any(c.topic == copy.topic for c in self._copies):
            raise ValueError(f"{copy.topic} is the events topic or has commands already")
        self._copies.append(copy)
        return copy

    def on_prepare(self, prepare: Callable[[], Awaitable[None]]) -> None:
        """Run at start-up before anything else (index creation; idempotent)."""
        self._prepare.append(prepare)

    def document_topic(self, topic: str, *, reads: bool, description: str) -> None:
        """List in `/asyncapi.json` a topic one of the service's components reads or writes."""
        self.documented_topics.append(DocumentedTopic(topic, reads, description))

    def component(self, component: Component, *checks: ReadinessCheck) -> None:
        self._components.append(component)
        self._checks.extend(checks)

    # --- topics ------------------------------------------------------------------------------

    def consumed_topics(self) -> list[str]:
        """The topics the inbox reads: derived from the handled event types' producers."""
        topics: list[str] = []
        for event_type in self._handlers:
            topic = (
                self.topics.retention_commands
                if event_type in COMMAND_TYPES
                else self.topics.events(event_type.split(".", 1)[0])
            )
            if topic not in topics:
                topics.append(topic)
        return topics

    def inbox_subscriptions(self) -> list[tuple[list[str], str, str]]:
        """`(topics, consumer group, name)` of each inbox subscription.

        `retention.commands` is read apart from the events topics: a subscription handles one
        message at a time, and an erasure can take long (a large read model to clear, a
        transaction retried), so sharing one would hold every event read meanwhile behind it
        — in retention, the services' `SubjectErased` reports behind its own erasure. Each
        keeps its processed-event markers under its name."""
        commands = self.topics.retention_commands
        events = [t for t in self.consumed_topics() if t != commands]
        subscriptions: list[tuple[list[str], str, str]] = []
        if commands in self.consumed_topics():
            subscriptions.append(
                ([commands], self.settings.commands_group, f"{self.name}-commands")
            )
        if events:
            subscriptions.append((events, self.settings.inbox_group, f"{self.name}-inbox"))
        return subscriptions

    def consumer_groups(self) -> dict[str, str]:
        """Topic → the consumer group of the inbox subscription that reads it."""
        return {t: group for topics, group, _ in self.inbox_subscriptions() for t in topics}

    def consumed_event_types(self) -> dict[str, list[str]]:
        """Topic → the event types the inbox handles from it (the AsyncAPI document's reads)."""
        out: dict[str, list[str]] = {topic: [] for topic in self.consumed_topics()}
        for event_type in self._handlers:
            topic = (
                self.topics.retention_commands
                if event_type in COMMAND_TYPES
                else self.topics.events(event_type.split(".", 1)[0])
            )
            out[topic].append(event_type)
        return out

    def copied_event_types(self) -> dict[str, list[str]]:
        """Topic → the service's own event types the relay also publishes there."""
        return {copy.topic: sorted(copy.event_types) for copy in self._copies}

    @property
    def events_topic(self) -> str:
        return self.topics.events(self.name)

    def owned_topics(self) -> list[str]:
        names = [self.events_topic, dlq_topic(self.events_topic)]
        names.append(republish_topic(self.settings.topic_prefix))
        names.append(heads_topic(self.settings.topic_prefix))
        names.extend(copy.topic for copy in self._copies)
        for topic in self.consumed_topics():
            names.extend([topic, dlq_topic(topic)])
        return list(dict.fromkeys(names))

    async def ensure_topics(self) -> None:
        s = self.settings
        try:
            await ensure_topics(
                s.kafka_bootstrap,
                self.owned_topics(),
                partitions=s.topic_partitions,
                security=s.kafka_security(),
            )
        except TopicPartitionMismatchError:
            if s.environment is Environment.production:
                raise
            # The local broker forgets topics on restart and a client may have re-created one
            # with its own count: keep a development stack usable, and say so loudly.
            log.error("topics exist with another partition count; per-key order may differ")
            await ensure_topics(
                s.kafka_bootstrap,
                self.owned_topics(),
                partitions=s.topic_partitions,
                check_partitions=False,
                security=s.kafka_security(),
            )

    # --- life cycle ----------------------------------------------------------------------------

    def _tailer(self, projection: Projection) -> Tailer[Envelope]:
        checkpoint = (
            MemoryCheckpoint(0)
            if self.db is None
            else MongoCheckpoint(self.db[PROJECTION_STATE], projection.name)
        )

        async def apply_all(events: Sequence[Envelope]) -> None:
            for envelope in events:
                await projection.apply(envelope)

        return Tailer(
            projection.name,
            StoreSource(self.kernel.store),
            checkpoint,
            apply_all,
            idle_wait_s=self.settings.projector_idle_wait_seconds,
            metrics=self._tailer_metrics,
        )

    async def _key_cache_watcher(self) -> Tailer[Envelope]:
        """Per process, from the store's current end: evict keys of subjects erased anywhere."""
        erased_type = self.events.event_type(SUBJECT_ERASED)
        keystore = self.kernel.keystore

        async def evict(events: Sequence[Envelope]) -> None:
            for envelope in events:
                if envelope.event_type == erased_type and envelope.subject_id:
                    keystore.invalidate(f"subject:{envelope.subject_id}")

        start = await self.kernel.store.last_seq()
        return Tailer(
            "key-cache",
            StoreSource(self.kernel.store),
            MemoryCheckpoint(start),
            evict,
            idle_wait_s=self.settings.projector_idle_wait_seconds,
            metrics=self._tailer_metrics,
        )

    def _spawn(self, coro: Awaitable[None], name: str) -> None:
        self._tasks.append(asyncio.ensure_future(coro))
        self._tasks[-1].set_name(name)

    @contextlib.asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """Start everything in order; stop in reverse, whatever failed on the way."""
        if not self.in_memory:
            self._refuse_unverifiable_commands()
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(self._close)
            await self.kernel.prepare()
            for prepare in self._prepare:
                await prepare()
            if not self.in_memory:
                await self.ensure_topics()
            stack.push_async_callback(self._stop_tasks)
            watch = getattr(self.kernel.keystore, "watch_erasures", None)
            if watch is not None:
                watcher = asyncio.ensure_future(watch())
                stack.push_async_callback(_cancel, watcher)
            self._tailers = [self._tailer(p) for p in self._projections]
            if not self.in_memory:
                self._tailers.append(await self._key_cache_watcher())
            for tailer in self._tailers:
                self._spawn(tailer.run(), f"{self.name}-{tailer.status.name}")
            if self._command_jwks is not None:
                self._spawn(warm_command_keys(self._command_jwks), f"{self.name}-command-keys")
            if not self.in_memory:
                await self._start_messaging(stack)
            for component in self._components:
                await component.start()
                stack.push_async_callback(component.stop)
            yield

    def _refuse_unverifiable_commands(self) -> None:
        """Fail closed: a service that obeys commands starts only knowing whose they are."""
        commands = self._erasure_commands
        missing = self.settings.command_keys_setting_missing()
        if commands is not None and commands.verifier.keys is None and missing:
            raise ConfigurationError(f"refusing to start {self.name}: {missing}")

    async def _start_messaging(self, stack: contextlib.AsyncExitStack) -> None:
        s = self.settings
        assert self.db is not None
        self.relay = Relay(
            self.kernel.store,
            self.db,
            s.kafka_bootstrap,
            self.events_topic,
            settings=RelaySettings(
                idle_wait_s=s.relay_idle_wait_seconds, lease_ttl_s=s.relay_lease_ttl_seconds
            ),
            change_stream=self.db[getattr(self.kernel.store, "events").name],  # noqa: B009
            partitions=s.topic_partitions,
            registry=self.metrics_registry,
            copies=self._copies,
            security=s.kafka_security(),
        )
        self._spawn(self.relay.run(), f"{self.name}-relay")
        relay = self.relay
        self.heads = HeadAnnouncer(
            self.name,
            s.kafka_bootstrap,
            heads_topic(s.topic_prefix),
            lambda: relay.status.checkpoint if relay.status.holds_lease else None,
            idle_interval_s=s.heads_idle_interval_seconds,
            producer_config=PRODUCER_RECOVERY_CONFIG,
            security=s.kafka_security(),
        )
        await self.heads.start()
        stack.push_async_callback(self.heads.stop)
        self.republish = RepublishListener(
            self.relay,
            s.kafka_bootstrap,
            topic_prefix=s.topic_prefix,
            group_prefix=f"{s.topic_prefix}republish-",
            session_timeout_ms=s.consumer_session_timeout_ms,
            heartbeat_interval_ms=s.consumer_heartbeat_interval_ms,
            fetch_max_wait_ms=s.consumer_fetch_max_wait_ms,
            security=s.kafka_security(),
        )
        stack.push_async_callback(self.republish.stop)
        starts = [self.republish.start()]
        if self._handlers:
            self.broker = self.inbox_broker()
            # Retention's keys out of reach is not the command's fault: retried, never parked.
            default = RetryPolicy()
            retry = RetryPolicy(
                transient_errors=(*default.transient_errors, CommandKeysUnavailableError)
            )
            self.consumer = EventConsumer(
                self.broker, self.db, registry=self.metrics_registry, retry=retry
            )
            for topics, group, name in self.inbox_subscriptions():
                commands = topics == [self.topics.retention_commands]
                self.consumer.subscribe(
                    *topics,
                    handler=self.dispatch,
                    group_id=group,
                    name=name,
                    prepare=self.prepare_command if commands else None,
                    accepts=self.inbox_accepts(commands=commands),
                    session_timeout_ms=s.consumer_session_timeout_ms,
                    heartbeat_interval_ms=s.consumer_heartbeat_interval_ms,
                    fetch_max_wait_ms=s.consumer_fetch_max_wait_ms,
                )
            stack.push_async_callback(self.broker.stop)
            starts.append(self.broker.start())
        # Each joins a consumer group (about half the session timeout): in parallel.
        await asyncio.gather(*starts)

    def inbox_broker(self) -> KafkaBroker:
        """The inbox's FastStream broker (not connected). Dead letters are published by it:
        acks from every replica, as events are."""
        s = self.settings
        return KafkaBroker(
            s.kafka_bootstrap,
            logger=None,
            client_id=self.name,
            acks="all",
            enable_idempotence=False,
            security=s.kafka_security().faststream(),
        )

    async def prepare_command(self, envelope: Envelope) -> None:
        """Before the command's transaction: the participant's work (`ErasureCommands.prepare`)."""
        if self._erasure_commands is not None and envelope.event_type in COMMAND_TYPES:
            await self._erasure_commands.prepare(envelope)

    def inbox_accepts(self, *, commands: bool) -> Callable[[str], bool]:
        """The types an inbox subscription acts on; the rest of the topics it reads (another
        service's whole events topic, for one type of it) is acknowledged unread.

        Commands only from the commands subscription: `retention.events` carries each
        command too (the relay copies it to `retention.commands`), and a service reading that
        topic for another type — retention, for its own `SubjectErased` — would otherwise
        obey the command a second time there, inside the events' transaction and ahead of
        every report read behind it."""

        def accepts(event_type: str) -> bool:
            return event_type in self._handlers and (event_type in COMMAND_TYPES) == commands

        return accepts

    async def dispatch(self, envelope: Envelope, ctx: HandlerContext) -> None:
        """The inbox: the event type's handlers in order; other types on the same topics are
        not ours."""
        for handler in self._handlers.get(envelope.event_type, ()):
            await handler(envelope, ctx)

    async def _stop_tasks(self) -> None:
        if self.relay is not None:
            await self.relay.stop()
        for tailer in self._tailers:
            await tailer.stop()
        for task in self._tasks:
            try:
                await asyncio.wait_for(task, timeout=10)
            except TimeoutError:
                task.cancel()
            except Exception:  # the part logged its own failure
                log.exception("%s ended with an error", task.get_name())
        self._tasks = []

    async def _close(self) -> None:
        for close in self._closers:
            await close()
        await self.kernel.close()
        if self.client is not None:
            await self.client.close()

    # --- readiness and status ------------------------------------------------------------------

    def readiness_checks(self) -> list[ReadinessCheck]:
        checks: list[ReadinessCheck] = []
        if self.client is not None:
            checks.append(mongo_check(self.client))
            checks.append(
                kafka_check(
                    self.settings.kafka_bootstrap,
                    client_options=self.settings.kafka_security().client_config(),
                )
            )
            checks.append(ReadinessCheck("relay", self._relay_ready))
            checks.append(ReadinessCheck("inbox", self._inbox_ready))
        checks.append(ReadinessCheck("projections", self._projections_ready))
        return checks + self._checks

    async def _relay_ready(self) -> bool | str:
        task = next((t for t in self._tasks if t.get_name() == f"{self.name}-relay"), None)
        if self.relay is None or task is None or task.done():
            return False
        status = self.relay.status
        if status.last_error is not None:
            return False  # failing rounds (e.g. an event too large to publish): not ready
        if status.hole_at is not None:
            return f"waiting for producer_seq {status.hole_at}"
        return f"checkpoint {status.checkpoint}"

    async def _inbox_ready(self) -> bool | str:
        if not self._handlers:
            return "no inbox"
        if self.broker is None or not await self.broker.ping(timeout=1.0):
            return False
        stalled = self.consumer.stalled if self.consumer is not None else {}
        if stalled:
            # Shown, not failed: the message waits out a transient error; restarting won't help.
            return "; ".join(f"{n} stalled after {a} attempts" for n, a in stalled.items())
        return "consuming"

    async def _projections_ready(self) -> bool | str:
        names = {f"{self.name}-{t.status.name}" for t in self._tailers}
        running = [t for t in self._tasks if t.get_name() in names and not t.done()]
        if len(self._tailers) < len(self._projections) or len(running) < len(names):
            return False
        lags = [f"{t.status.name} lag {await t.lag()}" for t in self._tailers]
        return "; ".join(lags) if lags else "none"


async def _cancel(task: asyncio.Future[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
