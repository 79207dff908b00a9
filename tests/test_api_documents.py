"""Issue 16: the committed API documents are what the services serve, and every error is a problem.

`docs/openapi/<service>.json` and `docs/asyncapi/<service>.json` are written by `make openapi`
(`mmgen apidocs write`) from each service's own app. These tests build every service again
(default settings, nothing started) and compare what it serves at `/openapi.json` and
`/asyncapi.json` with the files, so a route, schema or event changed without regenerating
fails here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mmgen.cli.apidocs import KINDS, document_path, served
from mmgen.cli.stack import discover_services

ROOT = Path(__file__).resolve().parents[1]
SERVICES = [entry.name for entry in discover_services()]
PROBLEM_JSON = "application/problem+json"
#: Error answers whose body a protocol fixes (C2SP tlog-witness: 409 carries the cosigned size).
PROTOCOL_BODIES = {("witness", "/add-checkpoint", "post", "409")}
REGENERATE = "run `make openapi` and commit docs/"


def committed(kind: str, service: str) -> dict[str, Any] | None:
    path = document_path(ROOT, kind, service)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def test_every_service_of_the_workspace_has_its_documents_and_no_others() -> None:
    assert {"identity", "projects", "profiles", "consent", "retention", "witness"} <= set(SERVICES)
    for kind in KINDS:
        files = {p.stem for p in (ROOT / "docs" / kind).glob("*.json")}
        assert files <= set(SERVICES), f"documents of no service in docs/{kind}: {REGENERATE}"
    assert {p.stem for p in (ROOT / "docs" / "openapi").glob("*.json")} == set(SERVICES)


@pytest.mark.parametrize("service", SERVICES)
async def test_committed_documents_equal_what_the_service_serves(service: str) -> None:
    docs = await served(service)
    assert "openapi" in docs.documents
    for kind in KINDS:
        serving = docs.documents.get(kind)
        assert committed(kind, service) == serving, f"docs/{kind}/{service}.json: {REGENERATE}"


def error_responses(document: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    found = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for status, response in operation["responses"].items():
                if status[:1] in ("4", "5"):
                    found.append((path, method, status, response))
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_every_error_response_is_a_problem(service: str) -> None:
    document = committed("openapi", service)
    assert document is not None, REGENERATE
    assert "Problem" in document["components"]["schemas"]
    assert "HTTPValidationError" not in document["components"]["schemas"]
    errors = error_responses(document)
    assert errors
    for path, method, status, response in errors:
        content = response.get("content") or {}
        if (service, path, method, status) in PROTOCOL_BODIES:
            assert PROBLEM_JSON not in content
            continue
        assert list(content) == [PROBLEM_JSON], (path, method, status, content)
        assert content[PROBLEM_JSON]["schema"] == {"$ref": "#/components/schemas/Problem"}


@pytest.mark.parametrize("service", SERVICES)
def test_secured_operations_document_their_refusals(service: str) -> None:
    document = committed("openapi", service)
    assert document is not None, REGENERATE
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            if operation.get("security"):
                assert {"401", "403"} <= set(responses), (path, method)
            if operation.get("requestBody") or operation.get("parameters"):
                assert "422" in responses, (path, method)


def channels(service: str) -> dict[str, Any]:
    document = committed("asyncapi", service)
    assert document is not None, REGENERATE
    found: dict[str, Any] = document["channels"]
    return found


def test_asyncapi_lists_what_a_service_reads_and_its_dead_letters() -> None:
    """profiles learns projects' members and consents from their topics; retention's commands
    reach every service; each read topic has its dead-letter topic beside it."""
    profiles = channels("profiles")
    read = profiles["projects.events:consumed"]
    assert read["address"] == "projects.events"
    assert "projects.ProjectCreated" in read["description"]
    assert "projects.events.dlq" in {c["address"] for c in profiles.values()}
    for service in ("identity", "projects", "profiles", "consent", "retention"):
        assert "retention.commands:consumed" in channels(service), service


def test_asyncapi_lists_the_commands_retention_publishes() -> None:
    retention = channels("retention")
    assert "retention.commands:retention.EraseSubject" in retention
    assert retention["retention.commands:retention.EraseSubject"]["address"] == (
        "retention.commands"
    )


def test_asyncapi_lists_the_audit_logs_reads_and_writes() -> None:
    consent = channels("consent")
    assert consent["audit.log:published"]["address"] == "audit.log"
    pattern = [c for name, c in consent.items() if name.endswith(r"\.events$:consumed")]
    assert len(pattern) == 1 and "audit projector" in pattern[0]["description"]
