"""AsyncAPI for a service's topics: every registered event type appears, with its payload schema.

The relay publishes with aiokafka directly (batched, far faster than FastStream's awaited
publish), so FastStream never sees those messages. To document them, one FastStream
*publisher* per event type is declared on the service's broker (or a throwaway one): it only
carries the schema — the full envelope, with `event_type` and `schema_version` fixed and `data`
typed by the event's public model — and FastStream's AsyncAPI generator does the rest.
Personal fields are listed (names only) on `pii`, which travels encrypted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI
from pydantic import BaseModel, Field, create_model

from mmgen.events.envelope import Envelope, PiiBlob
from mmgen.events.registry import EventRegistry, EventSpec
from mmgen.events.topics import dlq_topic

ASYNCAPI_VERSION = "3.0.0"


def envelope_model(spec: EventSpec) -> type[BaseModel]:
    """The envelope of one event type as a pydantic model (for its JSON schema only)."""
    personal = list(spec.personal_model.model_fields) if spec.personal_model else []
    personal_extra: dict[str, Any] = {"x-personal-fields": personal}
    if personal:
        pii_doc = (
            "AES-256-GCM ciphertext of the personal fields "
            f"{', '.join(personal)}, under the data key of the {spec.owner}; unreadable "
            "once that owner is erased (crypto-shredding)."
        )
    else:
        pii_doc = "Always null: this event has no personal fields."
    name = f"{spec.event_type}.v{spec.version}"
    event_type_literal: Any = Literal[spec.event_type]  # a value-dependent type: built at run time
    version_literal: Any = Literal[spec.version]
    model: type[BaseModel] = create_model(
        name,
        __base__=Envelope,
        __doc__=(
            f"{spec.event_type} (schema version {spec.version}): action {spec.action} on "
            f"{spec.resource_type}; categories {', '.join(spec.categories) or 'none'}."
        ),
        event_type=(event_type_literal, Field(spec.event_type)),
        schema_version=(version_literal, Field(spec.version)),
        data=(spec.data_model, ...),
        pii=(
            PiiBlob | None,
            Field(
                None,
                description=pii_doc,
                json_schema_extra=personal_extra,
            ),
        ),
    )
    model.model_config["title"] = name
    return model


def declare_event_publishers(
    broker: Any, registry: EventRegistry, topic: str, *, service: str | None = None
) -> list[Any]:
    """Declare one documented publisher per event type of `service` (default: all) on `topic`.

    `broker` is a FastStream `KafkaBroker` or `KafkaRouter`. The publishers exist for the
    AsyncAPI document; the relay does the publishing.
    """
    publishers = []
    for event_type in registry.event_types():
        spec = registry.spec(event_type)
        if service is not None and spec.service != service:
            continue
        publishers.append(
            broker.publisher(
                topic,
                schema=envelope_model(spec),
                title=f"{topic}:{spec.event_type}",
                description=(
                    f"{spec.event_type} v{spec.version}, published by the {spec.service} "
                    f"relay in producer_seq order; key subject_id (else stream_id); headers "
                    "event_type, schema_version, event_id, traceparent."
                ),
            )
        )
    return publishers


def declare_consumed_topics(
    broker: Any,
    consumes: Mapping[str, Sequence[str]],
    *,
    group: str,
    groups: Mapping[str, str] | None = None,
) -> list[Any]:
    """Document what a service reads: one subscriber per topic its inbox consumes (the event
    types it handles named), and the dead-letter topic it writes for each. `groups`: the
    consumer group of a topic read by another than `group`."""
    subscribers = []
    for topic, event_types in consumes.items():
        group_of = (groups or {}).get(topic, group)
        subscriber = broker.subscriber(
            topic,
            group_id=group_of,
            title=f"{topic}:consumed",
            description=(
                f"Read by the inbox (consumer group {group_of}). Handled: "
                f"{', '.join(sorted(event_types))}; other event types are acknowledged unread "
                f"(by the event_type header). A message still failing after retries goes to "
                f"{dlq_topic(topic)}."
            ),
        )

        async def consume(envelope: Envelope) -> None:
            """Documentation only: the runtime's inbox consumes (`mmgen.events.consumer`)."""

        subscribers.append(subscriber(consume))
        broker.publisher(
            dlq_topic(topic),
            schema=Envelope,
            title=f"{dlq_topic(topic)}:dead-letter",
            description=(
                f"Messages of {topic} the inbox could not handle, unchanged, with headers "
                "dlq_error_type, dlq_error_message, dlq_original_topic, "
                "dlq_original_partition, dlq_original_offset and dlq_consumer "
                "(`mmgen dlq list|replay`)."
            ),
        )
    return subscribers


def asyncapi_document(
    broker: KafkaBroker, *, title: str, version: str = "1.0.0", description: str | None = None
) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of everything declared on `broker` (publishers, subscribers)."""
    spec = AsyncAPI(
        broker,
        title=title,
        version=version,
        description=description,
        schema_version=ASYNCAPI_VERSION,
    )
    doc: dict[str, Any] = spec.to_specification().to_jsonable()
    return doc


def events_asyncapi(
    registry: EventRegistry,
    topic: str,
    *,
    service: str,
    bootstrap: str = "localhost:9092",
    version: str = "1.0.0",
    consumes: Mapping[str, Sequence[str]] | None = None,
    group: str | None = None,
    groups: Mapping[str, str] | None = None,
    copies: Mapping[str, Sequence[str]] | None = None,
    others: Sequence[tuple[str, bool, str]] = (),
) -> dict[str, Any]:
    """A stand-alone AsyncAPI document of `service`'s events on `topic` (no connection made).

    `consumes`: topic → event types the service's inbox (consumer group `group`, or the
    topic's in `groups`) handles;
    `copies`: topic → the service's own event types the relay also publishes there (commands);
    `others`: (topic, read?, description) of what the service's own components read or write.
    """
    broker = KafkaBroker(bootstrap)
    declare_event_publishers(broker, registry, topic, service=service)
    for copy_topic, event_types in (copies or {}).items():
        for event_type in event_types:
            spec = registry.spec(event_type)
            broker.publisher(
                copy_topic,
                schema=envelope_model(spec),
                title=f"{copy_topic}:{event_type}",
                description=(
                    f"{event_type} v{spec.version}: the same message as on {topic}, also "
                    f"published here by the {service} relay, for the services that obey it."
                ),
            )
    if consumes:
        declare_consumed_topics(broker, consumes, group=group or f"{service}-inbox", groups=groups)
    for other_topic, reads, description in others:
        if reads:

            async def read(message: dict[str, Any]) -> None:
                """Documentation only: the service's component reads this topic."""

            broker.subscriber(
                other_topic, title=f"{other_topic}:consumed", description=description
            )(read)
        else:
            broker.publisher(other_topic, title=f"{other_topic}:published", description=description)
    inbox = f" and what it reads from {', '.join(consumes)}" if consumes else ""
    return asyncapi_document(
        broker,
        title=f"{service} events",
        version=version,
        description=f"Events the {service} service publishes to {topic}{inbox}.",
    )
