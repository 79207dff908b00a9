"""How the profiles service's domain errors render as problem+json (the app registers this map).

Details name fields and rules, never submitted values (`domain.errors`).
"""

from __future__ import annotations

from typing import Any

from mmgen.platform import ProblemSpec
from mmgen.profiles.domain.errors import (
    NotACreatorError,
    ProfileConflictError,
    ProfileErasedError,
    ProfileInvalidError,
    ProfileNotFoundError,
    SearchQueryInvalidError,
)


def _field_errors(exc: ProfileInvalidError) -> dict[str, Any]:
    """The same `errors` members as the platform's request-validation problem."""
    return {
        "errors": [
            {
                "field": problem.field,
                "loc": ["body", *problem.field.split(".")],
                "msg": problem.message,
                "type": problem.type,
            }
            for problem in exc.problems
        ]
    }


PROBLEMS: dict[type[Exception], ProblemSpec] = {
    ProfileInvalidError: ProblemSpec(
        422, title="Profile invalid", slug="profile-invalid", extensions=_field_errors
    ),
    SearchQueryInvalidError: ProblemSpec(
        422,
        title="Search query invalid",
        slug="search-query-invalid",
        extensions=lambda exc: {
            "errors": [
                {"field": "q", "loc": ["query", "q"], "msg": str(exc), "type": "value_error"}
            ]
        },
    ),
    # A hidden profile (`ProfileHiddenError`) answers exactly like a missing one.
    ProfileNotFoundError: ProblemSpec(404, title="Profile not found", slug="profile-not-found"),
    NotACreatorError: ProblemSpec(403, title="Not a creator", slug="not-a-creator"),
    ProfileErasedError: ProblemSpec(410, title="Profile erased", slug="profile-erased"),
    ProfileConflictError: ProblemSpec(409, title="Profile conflict", slug="profile-conflict"),
}
