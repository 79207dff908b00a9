"""Opening the encrypted personal parts that read models point at (title, text, file name).

Read-model rows keep an event's `PiiBlob` rather than the value, so a shred of the owner's key
erases them with the event. `PersonalReader.open` decrypts one with the kernel's cipher and
validates it against the event type's personal model; a row written under an older schema
version is read through the event store instead, so upcasters apply as for any event.
"""

from __future__ import annotations

from typing import Any

from mmgen.events.envelope import Envelope, PiiBlob
from mmgen.events.erased import Erased
from mmgen.events.errors import EventDataInvalidError
from mmgen.events.mapper import EventMapper
from mmgen.events.registry import EventData
from mmgen.events.store import EventStore


class PersonalReader:
    def __init__(self, mapper: EventMapper, store: EventStore) -> None:
        self.mapper = mapper
        self.store = store

    async def open(
        self, *, event_type: str, schema_version: int, event_id: str, pii: PiiBlob
    ) -> Any:
        """The personal model, or an `Erased` marker if the owner's key was shredded."""
        spec = self.mapper.registry.spec(event_type)
        if schema_version != spec.version or spec.personal_model is None:
            envelope = await self.store.get(event_id)
            if envelope is None:
                raise EventDataInvalidError(f"event {event_id} named by a read model is missing")
            return (await self.mapper.to_domain(envelope)).personal
        plain = await self.mapper.cipher.decrypt(pii, event_id)
        if isinstance(plain, Erased):
            return plain
        return spec.personal_model.model_validate(self.mapper.transcoder.decode(plain))

    def public_data(self, envelope: Envelope) -> EventData:
        """An envelope's public data as its (upcast) model, without decrypting anything."""
        spec = self.mapper.registry.spec(envelope.event_type)
        data, _ = self.mapper.registry.upcast(
            envelope.event_type, envelope.schema_version, dict(envelope.data), None
        )
        return spec.data_model.model_validate(data)
