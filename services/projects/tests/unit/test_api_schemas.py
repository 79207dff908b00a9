"""The HTTP edge's pieces that need no app: request limits, correction semantics, cursors,
and a problem type for every error the service raises."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from mmgen.platform.pagination import decode_cursor
from mmgen.projects.domain.errors import ProjectsError
from mmgen.projects.domain.model import UNSET
from mmgen.projects.entrypoints.api.problems import PROBLEMS
from mmgen.projects.entrypoints.api.schemas import (
    DisclosureIn,
    MessageOut,
    ProjectIn,
    ProjectPatchIn,
    page_out,
)
from mmgen.projects.service_layer.views import MessageView, Page


def leaves(cls: type[Exception]) -> set[type[Exception]]:
    found: set[type[Exception]] = set()
    for sub in cls.__subclasses__():
        found |= {sub} | leaves(sub)
    return found


def test_every_error_of_the_service_has_a_problem() -> None:
    missing = [cls.__name__ for cls in leaves(ProjectsError) if cls not in PROBLEMS]
    assert missing == []
    statuses = {cls.__name__: spec.status for cls, spec in PROBLEMS.items()}
    assert statuses["FileTooLargeError"] == 413
    assert statuses["ContentMismatchError"] == statuses["ContentTypeNotAllowedError"] == 415
    assert statuses["DisclosurePurposeRefusedError"] == 422
    assert statuses["StatusTransitionError"] == 409
    assert statuses["ProjectNotFoundError"] == 404
    slugs = [spec.slug for spec in PROBLEMS.values()]
    assert "disclosure-purpose-not-permitted" in slugs


def test_a_project_cannot_be_created_with_fields_nobody_sets() -> None:
    with pytest.raises(ValidationError):
        ProjectIn.model_validate({"title": "t", "requirements": "r", "owner_id": "someone"})
    with pytest.raises(ValidationError):
        ProjectIn.model_validate({"title": "t" * 201, "requirements": "r"})
    with pytest.raises(ValidationError):
        ProjectIn.model_validate({"title": "t", "requirements": "r", "budget": "a lot"})
    made = ProjectIn.model_validate({"title": "  t ", "requirements": "r", "budget": "1k_5k"})
    assert (made.title, made.budget) == ("t", "1k_5k")


def test_a_correction_changes_only_what_it_names() -> None:
    assert ProjectPatchIn.model_validate({"budget": None}).changes() == {
        "title": UNSET,
        "requirements": UNSET,
        "budget_band": None,
        "deadline": UNSET,
    }
    for body in ({}, {"title": None}, {"requirements": None}, {"status": "completed"}):
        with pytest.raises(ValidationError):
            ProjectPatchIn.model_validate(body)


def test_any_well_formed_purpose_reaches_the_use_case_to_be_refused_there() -> None:
    body = {
        "recipient": {"type": "controller", "name": "Data broker"},
        "purpose": "sale",
        "legal_basis": "consent",
        "categories": ["contact"],
        "subject_ids": [str(uuid.uuid4())],
    }
    assert DisclosureIn.model_validate(body).purpose == "sale"
    with pytest.raises(ValidationError):
        DisclosureIn.model_validate({**body, "categories": ["sensitive"]})
    with pytest.raises(ValidationError):
        DisclosureIn.model_validate({**body, "purpose": "sale; drop table"})
    with pytest.raises(ValidationError):
        DisclosureIn.model_validate({**body, "recipient": {"type": "friend", "name": "x"}})


def test_pages_become_cursor_pages() -> None:
    view = MessageView("m1", "p1", 7, "a1", datetime.now(UTC), "hi")
    out = page_out(Page([view], {"before": 7}), MessageOut.of)
    assert out.items[0].text == "hi"
    assert out.next_cursor is not None
    assert decode_cursor(out.next_cursor) == {"before": 7}
    assert page_out(Page([], None), MessageOut.of).next_cursor is None
