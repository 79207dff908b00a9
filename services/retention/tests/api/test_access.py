"""Access requests over HTTP: every expected service's export (retention's own included) in
one package that validates against its schema, for the requester only, every download an
access event; a service that does not answer leaves the request in progress, named."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest

from mmgen.runtime.contract import ExportedActor, ExportedEvent, SubjectExport
from mmgen.runtime.testing import assert_problem, eventually

from .conftest import Api, subject_headers

pytestmark = pytest.mark.asyncio(loop_scope="module")


def _compliance(api: Api) -> dict[str, str]:
    return api.world.tokens.headers("compliance", purpose="legal_compliance")[1]


def _consent_export(subject: str) -> SubjectExport:
    at = datetime(2027, 1, 10, tzinfo=UTC)
    return SubjectExport(
        service="consent",
        subject_id=subject,
        generated_at=at,
        erased=False,
        records={"consent:marketing": {"granted": True}},
        events=[
            ExportedEvent(
                event_id="0195f3a0-0000-7000-8000-0000000000e1",
                event_type="consent.ConsentGranted",
                occurred_at=at,
                action="consent",
                actor=ExportedActor(id=subject, role="creator"),
                purpose="marketing",
                categories=["consent"],
            ),
            ExportedEvent(
                event_id="0195f3a0-0000-7000-8000-0000000000e2",
                event_type="consent.DataDisclosed",
                occurred_at=at,
                action="share",
                actor=ExportedActor(id="client-1", role="client"),
                purpose="payment_processing",
                categories=["payment"],
                data={
                    "recipient": {"type": "payment_provider", "name": "PayCo"},
                    "purpose": "payment_processing",
                    "legal_basis": "contract",
                    "categories": ["payment"],
                },
            ),
        ],
    )


async def test_the_package_holds_every_service_validates_and_names_recipients(api: Api) -> None:
    subject, headers = subject_headers(api)
    api.world.directory.exports[("consent", subject)] = _consent_export(subject)
    filed = await api.client.post("/privacy-requests", headers=headers, json={"type": "access"})
    assert filed.status_code == 201, filed.text
    request_id = filed.json()["request_id"]
    done = await api.wait_status(request_id, "completed")
    assert done["package_expires_at"] is not None

    response = await api.client.get(f"/privacy-requests/{request_id}/export", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    package, schema = body["package"], body["schema"]
    jsonschema.Draft202012Validator(schema).validate(package)
    assert [s["service"] for s in package["services"]] == ["consent", "identity", "retention"]
    own = next(s for s in package["services"] if s["service"] == "retention")
    assert [r["type"] for r in own["records"]["privacy_requests"]] == ["access"]
    assert package["recipients"][0]["recipient"] == {"type": "payment_provider", "name": "PayCo"}
    assert package["automated_decision_making"]["exists"] is False

    reads = await api.stored(event_type="retention.DataAccessed", subject_id=subject)
    assert any("export" in r["data"]["route"] for r in reads)
    exported = await api.stored(event_type="retention.SubjectExported", subject_id=subject)
    assert exported and exported[0]["actor"] == {"id": "retention", "role": "service"}

    _, other = subject_headers(api)
    refused = await api.client.get(f"/privacy-requests/{request_id}/export", headers=other)
    assert_problem(refused, 403, "not-your-request")
    compliance = await api.client.get(
        f"/privacy-requests/{request_id}/export", headers=_compliance(api)
    )
    assert_problem(compliance, 403, "not-your-request")


async def test_a_service_that_does_not_answer_leaves_the_request_in_progress(api: Api) -> None:
    _, headers = subject_headers(api)
    api.world.directory.down.add("identity")
    try:
        filed = await api.client.post("/privacy-requests", headers=headers, json={"type": "access"})
        assert filed.status_code == 201, filed.text
        request_id = filed.json()["request_id"]
        waiting = await api.request(request_id)
        assert waiting["status"] == "in_progress"
        states = {p["service"]: p["state"] for p in waiting["progress"]}
        assert states["identity"] == "to_retry" and states["consent"] == "exported"
        not_yet = await api.client.get(f"/privacy-requests/{request_id}/export", headers=headers)
        assert_problem(not_yet, 409, "package-not-ready")
    finally:
        api.world.directory.down.discard("identity")
    run = await api.client.post("/retention/run", headers=_compliance(api))
    assert run.status_code == 200, run.text
    assert run.json()["packages_ready"] >= 1
    await eventually(lambda: api.request(request_id), until=lambda r: r["status"] == "completed")
