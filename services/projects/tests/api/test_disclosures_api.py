"""Disclosures through HTTP: "we do not sell personal data" — a sale (or marketing, or
advertising) is a 422 with its own problem type and an audited refusal; a permitted sharing
is one `share` event per subject concerned, carrying exactly the categories disclosed, and
reaches each subject's export."""

from __future__ import annotations

from typing import Any

import pytest

from mmgen.platform.auth import issue_token
from mmgen.runtime.testing import assert_problem
from services.projects.tests.projects_kit import Api, Team

pytestmark = pytest.mark.asyncio(loop_scope="module")


def disclosure(team: Team, purpose: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "recipient": {"type": "payment_provider", "name": "PayCo Ltd"},
        "purpose": purpose,
        "legal_basis": "contract",
        "categories": ["contact", "payment"],
        "subject_ids": [team.creator.user_id, team.owner.user_id],
    }
    body.update(changes)
    return body


@pytest.mark.parametrize("purpose", ["sale", "marketing", "advertising", "data_broker"])
async def test_a_forbidden_purpose_is_422_and_an_audited_refusal(api: Api, purpose: str) -> None:
    team = await api.team()
    before = await api.service.kernel.store.last_seq()
    response = await api.client.post(
        f"/projects/{team.project_id}/disclosures",
        headers=team.owner.headers,
        json=disclosure(team, purpose),
    )
    problem = assert_problem(response, 422, "disclosure-purpose-not-permitted")
    assert problem["purpose"] == purpose
    assert problem["permitted_purposes"] == [
        "project_execution",
        "legal_compliance",
        "payment_processing",
    ]
    appended = await api.events(producer_seq={"$gt": before})
    assert [e["event_type"] for e in appended] == ["projects.AccessDenied"]
    [denial] = appended
    assert denial["actor"]["id"] == team.owner.user_id
    assert denial["data"]["code"] == "disclosure_purpose_refused"
    assert denial["data"]["status"] == 422
    assert denial["data"]["route"] == "/projects/{project_id}/disclosures"
    assert denial["data"]["target_id"] == team.project_id
    assert await api.db["disclosures"].count_documents({"project_id": team.project_id}) == 0


async def test_a_permitted_disclosure_is_a_share_event_per_subject(api: Api, tokens: Any) -> None:
    team = await api.team()
    response = await api.client.post(
        f"/projects/{team.project_id}/disclosures",
        headers=team.owner.headers,
        json=disclosure(team, "payment_processing"),
    )
    assert response.status_code == 201, response.text
    made = response.json()
    shares = await api.events(
        event_type="projects.DataDisclosed", **{"data.disclosure_id": made["disclosure_id"]}
    )
    assert [s["subject_id"] for s in shares] == [team.creator.user_id, team.owner.user_id]
    for share in shares:
        assert share["action"] == "share"
        assert share["purpose"] == "payment_processing"
        assert share["categories"] == ["contact", "payment"]  # exactly those disclosed
        assert share["actor"]["id"] == team.owner.user_id
        assert share["data"]["recipient"] == {"type": "payment_provider", "name": "PayCo Ltd"}
        assert share["data"]["legal_basis"] == "contract"

    retention = issue_token(tokens.key, subject="retention", role="service")
    export = await api.client.get(
        f"/internal/subjects/{team.creator.user_id}/export",
        headers={"Authorization": f"Bearer {retention}", "X-Purpose": "legal_compliance"},
    )
    assert export.status_code == 200, export.text
    [record] = export.json()["records"]["disclosures"]
    assert record["recipient"]["name"] == "PayCo Ltd"
    assert record["purpose"] == "payment_processing"
    [exported] = await api.events(
        event_type="projects.SubjectExported", subject_id=team.creator.user_id
    )
    assert exported["actor"] == {"id": "retention", "role": "service"}


async def test_a_disclosure_names_only_the_projects_people(api: Api) -> None:
    team = await api.team()
    stranger = api.person("client")
    response = await api.client.post(
        f"/projects/{team.project_id}/disclosures",
        headers=team.owner.headers,
        json=disclosure(team, "legal_compliance", subject_ids=[stranger.user_id]),
    )
    assert_problem(response, 422, "disclosure-subject-not-in-project")
    unknown_category = await api.client.post(
        f"/projects/{team.project_id}/disclosures",
        headers=team.owner.headers,
        json=disclosure(team, "legal_compliance", categories=["sensitive"]),
    )
    assert_problem(unknown_category, 422, "validation-failed")
