"""identity's `AccessDenied` and `SubjectErased` of schema version 1 read as the standard events."""

from __future__ import annotations

import uuid
from typing import Any

from mmgen.events.envelope import Actor, Envelope, Resource
from mmgen.identity.bootstrap import IdentityService
from mmgen.identity.domain.history import access_denied_v1, subject_erased_v1
from mmgen.identity.domain.model import ERASED_STATUS, User
from mmgen.runtime.contract import AccessDeniedData, SubjectErasedData

SUBJECT = "3b8f0c1e-8d1a-4a7b-9a53-2f3c1a0b9d11"
V1_DENIED = {
    "code": "purpose-required",
    "status": 403,
    "method": "GET",
    "path": "/users/{user_id}",
    "target_user_id": SUBJECT,
}
V1_ERASED = {
    "request_id": "req-1",
    "subject_id": SUBJECT,
    "key_shredded": True,
    "events_made_unreadable": 3,
    "read_models_deleted": 4,
    "held_categories": [],
}


def v1_envelope(event_type: str, data: dict[str, Any], *, stream: str, version: int) -> Envelope:
    return Envelope(
        event_type=event_type,
        schema_version=1,
        producer="identity",
        stream_id=stream,
        stream_version=version,
        subject_id=SUBJECT,
        actor=Actor(id="retention", role="service"),
        action="erase" if event_type.endswith("SubjectErased") else "deny",
        resource=Resource(type="user", id=SUBJECT),
        data=data,
    )


def test_access_denied_v1_fields_map_to_the_standard_ones() -> None:
    data, personal = access_denied_v1(dict(V1_DENIED), None)
    assert personal is None
    assert data == {
        "code": "purpose-required",
        "status": 403,
        "method": "GET",
        "route": "/users/{user_id}",
        "target_type": None,
        "target_id": None,
    }
    AccessDeniedData.model_validate(data)


def test_subject_erased_v1_fields_map_to_the_standard_ones() -> None:
    data, _ = subject_erased_v1(dict(V1_ERASED), None)
    assert data == {
        "request_id": "req-1",
        "subject_id": SUBJECT,
        "keys_shredded": 1,
        "records_deleted": {"account": 4},
        "records_anonymized": {"account": 3},
        "categories_held": [],
    }
    held, _ = subject_erased_v1(
        {
            **V1_ERASED,
            "key_shredded": False,
            "events_made_unreadable": 0,
            "read_models_deleted": 0,
            "held_categories": ["contact"],
        },
        None,
    )
    assert held["keys_shredded"] == 0 and held["categories_held"] == ["contact"]
    assert held["records_deleted"] == {} and held["records_anonymized"] == {}
    SubjectErasedData.model_validate(held)


async def test_stored_version_1_events_decode_as_the_standard_classes(
    identity: IdentityService,
) -> None:
    events = identity.runtime.events
    mapper = identity.kernel.mapper
    denied = await mapper.to_domain(
        v1_envelope("identity.AccessDenied", V1_DENIED, stream=f"denial-{uuid.uuid4()}", version=1)
    )
    assert isinstance(denied.data, events.AccessDenied)
    assert denied.data.route == "/users/{user_id}"
    erased = await mapper.to_domain(
        v1_envelope("identity.SubjectErased", V1_ERASED, stream=SUBJECT, version=2)
    )
    assert isinstance(erased.data, events.SubjectErased)
    assert erased.data.keys_shredded == 1 and erased.data.records_anonymized == {"account": 3}


async def test_an_account_erased_before_the_contract_folds_to_erased(
    identity: IdentityService,
) -> None:
    """Accounts erased by the old identity hold a version-1 `SubjectErased` in their stream."""
    stream = str(uuid.uuid4())
    envelope = v1_envelope(
        "identity.SubjectErased", {**V1_ERASED, "subject_id": stream}, stream=stream, version=1
    )
    await identity.kernel.store.append(stream, 0, [envelope])
    user = await identity.kernel.repository.get(User, stream)
    assert user is not None and user.status == ERASED_STATUS and not user.active
