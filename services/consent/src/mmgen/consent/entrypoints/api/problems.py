"""How consent's domain errors render as problem+json (the app registers this map)."""

from __future__ import annotations

from mmgen.consent.domain.errors import (
    ConsentConflictError,
    NoCurrentPolicyError,
    PolicyNotFoundError,
    PolicyVersionExistsError,
    PolicyVersionUnknownError,
    PurposeNotConsentBasedError,
    PurposeUnknownError,
    SubjectErasedError,
)
from mmgen.platform import ProblemSpec

PROBLEMS: dict[type[Exception], ProblemSpec] = {
    PurposeUnknownError: ProblemSpec(404, slug="purpose-not-found"),
    PurposeNotConsentBasedError: ProblemSpec(422, slug="purpose-not-consent-based"),
    PolicyVersionUnknownError: ProblemSpec(
        422,
        slug="policy-version-unknown",
        extensions=lambda e: {
            "errors": [{"field": "policy_version", "msg": "not a published version"}]
        },
    ),
    PolicyVersionExistsError: ProblemSpec(409, slug="policy-version-exists"),
    NoCurrentPolicyError: ProblemSpec(404, slug="no-current-policy"),
    PolicyNotFoundError: ProblemSpec(404, slug="policy-not-found"),
    SubjectErasedError: ProblemSpec(410, slug="subject-erased"),
    ConsentConflictError: ProblemSpec(409, slug="consent-conflict"),
}
