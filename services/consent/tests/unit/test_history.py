"""Consent's version-1 audit and erasure events read as the runtime's standard events (v2).

Stored events of the old shapes are decoded by the registry the service runs on — through
the in-memory bootstrap and through the Mongo one (built without I/O), whose upcasters are
registered in a different order — and must validate as the contract's models.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from mmgen.consent.bootstrap import Consent, bootstrap
from mmgen.consent.domain.history import STANDARD_EVENT_VERSIONS
from mmgen.consent.settings import ConsentSettings
from mmgen.events.envelope import Envelope, Resource
from mmgen.runtime.contract import SubjectErasedData

from .conftest import in_memory_consent


def v1(event_type: str, data: dict[str, Any], subject: str | None, action: str) -> Envelope:
    """An event as consent stored it before the erasure contract."""
    return Envelope(
        event_type=event_type,
        schema_version=1,
        producer="consent",
        producer_seq=7,
        stream_id=f"old:{uuid.uuid4()}",
        stream_version=1,
        subject_id=subject,
        action=action,
        resource=Resource(type="subject", id=subject or "r-1"),
        data=data,
    )


@pytest.fixture(params=["in-memory", "mongo"])
def service(request: pytest.FixtureRequest) -> Consent:
    if request.param == "in-memory":
        return in_memory_consent()
    return bootstrap(ConsentSettings(environment="test", jwks_url=None))


async def decode(service: Consent, envelope: Envelope) -> Any:
    return (await service.runtime.kernel.mapper.to_domain(envelope)).data


def test_the_standard_events_are_declared_at_version_2(service: Consent) -> None:
    registry = service.runtime.registry
    for suffix, version in STANDARD_EVENT_VERSIONS.items():
        assert registry.spec(f"consent.{suffix}").version == version == 2
    assert registry.spec("consent.DataAccessed").version == 1  # new: nothing stored before


async def test_subject_erased_v1_counts_per_category_and_names_the_subject(
    service: Consent,
) -> None:
    subject = str(uuid.uuid4())
    old = {
        "request_id": "req-1",
        "keys_shredded": 1,
        "consent_records_deleted": 2,
        "tracking_events_deleted": 5,
        "categories_held": [],
    }
    data = await decode(service, v1("consent.SubjectErased", old, subject, "erase"))
    assert isinstance(data, SubjectErasedData)
    assert data.model_dump() == {
        "request_id": "req-1",
        "subject_id": subject,
        "keys_shredded": 1,
        "records_deleted": {"consent": 2, "usage": 5},
        "records_anonymized": {},
        "categories_held": [],
    }
    held = {**old, "consent_records_deleted": 0, "categories_held": ["consent", "payment"]}
    data = await decode(service, v1("consent.SubjectErased", held, subject, "erase"))
    assert data.categories_held == ["consent", "payment"]
    assert data.records_deleted == {"usage": 5}


async def test_footprint_era_fields_of_an_export_become_records_and_events(
    service: Consent,
) -> None:
    old = {"consent_records": 2, "tracking_events": 3}
    data = await decode(service, v1("consent.SubjectExported", old, str(uuid.uuid4()), "read"))
    assert data.model_dump() == {"records": 5, "events": 3}


async def test_access_denied_v1_is_bounded_and_has_no_target(service: Consent) -> None:
    old = {"code": "c" * 150, "status": 403, "method": "GET", "route": "/consents/{subject_id}"}
    data = await decode(service, v1("consent.AccessDenied", old, None, "deny"))
    assert data.model_dump() == {
        "code": "c" * 100,
        "status": 403,
        "method": "GET",
        "route": "/consents/{subject_id}",
        "target_type": None,
        "target_id": None,
        "reason": None,  # fields the contract added since: their defaults
        "occurrences": 1,
    }


async def test_resource_anonymized_v1_counts_nothing_per_category(service: Consent) -> None:
    old = {
        "request_id": None,
        "resource_type": "project",
        "resource_id": "p-1",
        "records_anonymized": 0,
    }
    data = await decode(service, v1("consent.ResourceAnonymized", old, None, "erase"))
    assert data.model_dump() == {
        "request_id": None,
        "resource_type": "project",
        "resource_id": "p-1",
        "keys_shredded": 0,
        "records_anonymized": {},
    }


def test_the_audit_group_is_named_under_the_topic_prefix() -> None:
    """Stacks sharing a cluster under different prefixes never share the projector's group."""
    named = ConsentSettings(environment="test", jwks_url=None, topic_prefix="b.")
    assert named.audit_consumer_group == "b.consent-audit"
    assert ConsentSettings(environment="test", jwks_url=None).audit_consumer_group == (
        "consent-audit"
    )
    chosen = ConsentSettings(environment="test", jwks_url=None, audit_consumer_group="mine")
    assert chosen.audit_consumer_group == "mine"
