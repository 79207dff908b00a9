"""After crypto-shredding a subject, what the relay put on Kafka holds none of its personal
values in clear and can no longer be decrypted (raw bytes read with a plain aiokafka consumer)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from prometheus_client import CollectorRegistry

from mmgen.events.crypto import PersonalDataCipher
from mmgen.events.envelope import Envelope
from mmgen.events.erased import is_erased
from mmgen.events.kafka_testing import read_all
from mmgen.events.keys import MasterKey, MasterKeyring
from mmgen.events.mongo_keystore import MongoKeystore
from mmgen.events.mongo_store import MongoEventStore
from mmgen.events.relay import Relay, RelaySettings
from mmgen.events.topics import Topics, ensure_topics


async def test_shredded_subject_leaves_no_plaintext_on_kafka(
    kafka_bootstrap: str, mongo_db: Any, topic_prefix: str, make_envelope: Any
) -> None:
    producer = f"pii{uuid.uuid4().hex[:6]}"
    topic = Topics(topic_prefix).events(producer)
    await ensure_topics(kafka_bootstrap, [topic], partitions=3)
    store = MongoEventStore(mongo_db, producer)
    await store.ensure_indexes()
    keystore = MongoKeystore(mongo_db, MasterKeyring(MasterKey.generate()))
    await keystore.ensure_indexes()
    cipher = PersonalDataCipher(keystore)

    def personal(tag: str) -> dict[str, str]:
        r = uuid.uuid4().hex[:10]
        return {
            "name": f"Zelda {tag} Quixotic-{r}",
            "email": f"zq-{tag}-{r}@example.org",
            "phone": f"+34 6{int(r, 16) % 10**8:08d}",
        }

    erased_subject, kept_subject = str(uuid.uuid4()), str(uuid.uuid4())
    values = {erased_subject: personal("gone"), kept_subject: personal("kept")}
    appended: list[Envelope] = []
    for subject in (erased_subject, kept_subject, erased_subject):
        event = make_envelope(producer=producer, subject_id=subject)
        blob = await cipher.encrypt(
            f"subject:{subject}", event.event_id, json.dumps(values[subject]).encode()
        )
        event = event.model_copy(update={"pii": blob})
        appended.extend(await store.append(event.stream_id, 0, [event]))

    relay = Relay(
        store,
        mongo_db,
        kafka_bootstrap,
        topic,
        settings=RelaySettings(lease_ttl_s=2.0),
        registry=CollectorRegistry(),
    )
    await relay.start()
    try:
        assert await relay.acquire()
        assert await relay.publish_next() == 3
    finally:
        await relay.close()

    assert await keystore.shred(f"subject:{erased_subject}")

    records = await read_all(kafka_bootstrap, topic, expect=3)
    assert len(records) == 3
    raw = b"".join((r.key or b"") + r.value + b"".join(v for _, v in r.headers) for r in records)
    for subject, fields in values.items():
        for value in fields.values():
            assert value.encode() not in raw, f"{value!r} of {subject} travels in clear"
    for record in records:
        envelope = Envelope.from_wire(record.value)
        assert envelope.pii is not None
        plain = await cipher.decrypt(envelope.pii, envelope.event_id)
        if envelope.subject_id == erased_subject:
            assert is_erased(plain)  # the key is gone: the copy on Kafka is unreadable
        else:
            # The control subject still decrypts: the check above would see real plaintext.
            assert json.loads(plain) == values[kept_subject]  # type: ignore[arg-type]
