"""`mmgen dlq`: what the consumers parked in dead-letter topics, and putting it back.

A message reaches `<topic>.dlq` only when it could not be decoded or failed validation, or a
handler kept failing on it (transient errors are retried, never parked). Its headers say why
(`dlq_error_type`, `dlq_error_message`, `dlq_stage`, `dlq_attempts`, `dlq_original_topic`, ...).
After the cause is fixed (a handler bug, a missing upcaster), `replay` publishes the parked
bytes again to their original topic; consumers are idempotent on `event_id`, so a message
that was in fact processed meanwhile changes nothing. A consumer group remembers what was
replayed, so running `replay` twice does not send a message twice (`--again` does). Against a
broker that wants SASL/TLS, set `MMGEN_KAFKA_SECURITY_PROTOCOL` and its companions (the
services' own variables under the `MMGEN_` prefix).
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import asdict, dataclass
from typing import Annotated, Any

import typer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from rich.console import Console
from rich.table import Table

from mmgen.events.kafka_security import PLAINTEXT, KafkaSecurity, KafkaSecurityError

DLQ_SUFFIX = ".dlq"
REPLAY_GROUP = "mmgen-dlq-replay"
H_REPLAYED_FROM = "dlq_replayed_from"

app = typer.Typer(help="Dead letters: list them, replay them after a fix.", no_args_is_help=True)
console = Console()

Bootstrap = Annotated[
    str,
    typer.Option(envvar="MMGEN_KAFKA_BOOTSTRAP", help="Kafka bootstrap servers"),
]
Prefix = Annotated[str, typer.Option(envvar="MMGEN_TOPIC_PREFIX", help="topic name prefix")]
#: The broker's security, as the services name it under their own prefix (`MMGEN_` here).
SECURITY_VARIABLES = {
    "protocol": "MMGEN_KAFKA_SECURITY_PROTOCOL",
    "mechanism": "MMGEN_KAFKA_SASL_MECHANISM",
    "username": "MMGEN_KAFKA_SASL_USERNAME",
    "password": "MMGEN_KAFKA_SASL_PASSWORD",
    "ca_file": "MMGEN_KAFKA_SSL_CAFILE",
}


def kafka_security_from_env() -> KafkaSecurity:
    """`MMGEN_KAFKA_SECURITY_PROTOCOL` and its companions (unset: the local broker's PLAINTEXT)."""
    values = {k: os.environ.get(v) or None for k, v in SECURITY_VARIABLES.items()}
    try:
        return KafkaSecurity(
            protocol=values["protocol"] or "PLAINTEXT",
            mechanism=values["mechanism"],
            username=values["username"],
            password=values["password"],
            ca_file=values["ca_file"],
        )
    except KafkaSecurityError as exc:
        raise typer.BadParameter(
            f"{SECURITY_VARIABLES['protocol']} and its companions: {exc}"
        ) from exc


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    original_topic: str | None
    error_type: str | None
    error_message: str | None
    stage: str | None
    attempts: str | None
    failed_at: str | None
    event_id: str | None
    event_type: str | None

    @property
    def position(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"


def _headers(record: Any) -> dict[str, str]:
    return {k: v.decode("utf-8", "replace") for k, v in (record.headers or ()) if v is not None}


def _dead_letter(record: Any) -> DeadLetter:
    headers = _headers(record)
    event_id = event_type = None
    try:
        body = json.loads(record.value)
        if isinstance(body, dict):
            event_id, event_type = body.get("event_id"), body.get("event_type")
    except (ValueError, TypeError):
        pass
    return DeadLetter(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        original_topic=headers.get("dlq_original_topic"),
        error_type=headers.get("dlq_error_type"),
        error_message=headers.get("dlq_error_message"),
        stage=headers.get("dlq_stage"),
        attempts=headers.get("dlq_attempts"),
        failed_at=headers.get("dlq_failed_at"),
        event_id=str(event_id) if event_id else None,
        event_type=str(event_type) if event_type else None,
    )


async def dlq_topics(
    bootstrap: str, prefix: str = "", security: KafkaSecurity = PLAINTEXT
) -> list[str]:
    """Every dead-letter topic under `prefix`."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security.client_config())
    await admin.start()
    try:
        names = await admin.list_topics()
    finally:
        await admin.close()
    return sorted(n for n in names if n.startswith(prefix) and n.endswith(DLQ_SUFFIX))


async def _read(
    bootstrap: str, topic: str, group: str | None, security: KafkaSecurity
) -> tuple[list[Any], Any]:
    """Every record of `topic` (after the group's commit, with a group); the consumer stays open."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **security.client_config(),
    )
    await consumer.start()
    partitions = [TopicPartition(topic, p) for p in (consumer.partitions_for_topic(topic) or [])]
    if not partitions:
        await consumer.topics()  # refreshes the metadata: the topic may be new
        partitions = [
            TopicPartition(topic, p) for p in (consumer.partitions_for_topic(topic) or [])
        ]
    consumer.assign(partitions)
    ends = await consumer.end_offsets(partitions) if partitions else {}
    records: list[Any] = []
    for tp in partitions:
        committed = await consumer.committed(tp) if group else None
        if committed is None:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, committed)
    while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
        batches = await consumer.getmany(timeout_ms=500)
        for batch in batches.values():
            records.extend(batch)
    return records, consumer


async def list_dead_letters(
    bootstrap: str, topics: list[str], security: KafkaSecurity = PLAINTEXT
) -> list[DeadLetter]:
    found: list[DeadLetter] = []
    for topic in topics:
        records, consumer = await _read(bootstrap, topic, None, security)
        await consumer.stop()
        found.extend(_dead_letter(r) for r in records)
    return found


async def replay(
    bootstrap: str,
    topic: str,
    *,
    event_ids: set[str] | None = None,
    again: bool = False,
    security: KafkaSecurity = PLAINTEXT,
) -> list[DeadLetter]:
    """Publish the parked messages of `topic` (all, or those with `event_ids`) to their origin."""
    records, consumer = await _read(bootstrap, topic, None if again else REPLAY_GROUP, security)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=False,
        **security.client_config(),
    )
    await producer.start()
    replayed: list[DeadLetter] = []
    try:
        for record in records:
            letter = _dead_letter(record)
            if event_ids is not None and letter.event_id not in event_ids:
                continue
            if not letter.original_topic:
                continue
            headers = [(k, v) for k, v in (record.headers or ()) if not k.startswith("dlq_") and v]
            headers.append((H_REPLAYED_FROM, letter.position.encode()))
            await producer.send_and_wait(
                letter.original_topic, record.value, key=record.key, headers=headers
            )
            replayed.append(letter)
        if records and not again:
            await consumer.commit(
                {
                    TopicPartition(r.topic, r.partition): r.offset + 1
                    for r in sorted(records, key=lambda r: r.offset)
                }
            )
    finally:
        await producer.stop()
        await consumer.stop()
    return replayed


@app.command("list")
def list_command(
    bootstrap: Bootstrap = "127.0.0.1:9092",
    prefix: Prefix = "",
    topic: Annotated[str | None, typer.Option(help="one dead-letter topic")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines")] = False,
) -> None:
    """Dead letters with why they were parked."""
    security = kafka_security_from_env()
    topics = [topic] if topic else asyncio.run(dlq_topics(bootstrap, prefix, security))
    letters = asyncio.run(list_dead_letters(bootstrap, topics, security))
    if as_json:
        for letter in letters:
            typer.echo(json.dumps(asdict(letter)))
        return
    table = Table("position", "event", "stage", "attempts", "error", title="dead letters")
    for letter in letters:
        table.add_row(
            letter.position,
            f"{letter.event_type or '?'} {letter.event_id or '(undecodable)'}",
            letter.stage or "",
            letter.attempts or "",
            f"{letter.error_type or ''}: {(letter.error_message or '')[:120]}",
        )
    console.print(table if letters else "no dead letters")


@app.command("replay")
def replay_command(
    topic: Annotated[str, typer.Argument(help="the dead-letter topic, e.g. identity.events.dlq")],
    bootstrap: Bootstrap = "127.0.0.1:9092",
    event_id: Annotated[
        list[str] | None, typer.Option("--event-id", help="only these events (repeatable)")
    ] = None,
    again: Annotated[bool, typer.Option(help="also what was replayed before")] = False,
) -> None:
    """Publish parked messages again to their original topic (after fixing their cause)."""
    if not topic.endswith(DLQ_SUFFIX):
        raise typer.BadParameter(
            "not a dead-letter topic (…" + DLQ_SUFFIX + ")", param_hint="topic"
        )
    done = asyncio.run(
        replay(
            bootstrap,
            topic,
            event_ids=set(event_id) if event_id else None,
            again=again,
            security=kafka_security_from_env(),
        )
    )
    for letter in done:
        typer.echo(f"replayed {letter.position} → {letter.original_topic} ({letter.event_id})")
    typer.echo(f"{len(done)} replayed")
