"""The consent service's event mapper: stamps the categories of the purpose a consent is about.

The registry stamps one fixed list of categories per event type; a consent event's audit
meaning also depends on its purpose (an analytics consent touches `usage`, a sensitive-sharing
consent `sensitive`), so the envelope gets the union.
"""

from __future__ import annotations

from typing import Any

from mmgen.consent.domain.events import ConsentGranted, ConsentWithdrawn
from mmgen.consent.domain.purposes import CATALOGUE
from mmgen.events.envelope import Envelope
from mmgen.events.mapper import EventMapper, NewEvent


class ConsentEventMapper(EventMapper):
    """`EventMapper` adding the purpose's categories to consent events."""

    async def to_envelope(
        self, event: NewEvent[Any], stream_id: str, stream_version: int
    ) -> Envelope:
        envelope = await super().to_envelope(event, stream_id, stream_version)
        if isinstance(event.data, ConsentGranted | ConsentWithdrawn):
            extra = CATALOGUE[event.data.purpose].event_categories
            categories = tuple(sorted(set(envelope.categories) | set(extra)))
            envelope = envelope.model_copy(update={"categories": categories})
        return envelope
