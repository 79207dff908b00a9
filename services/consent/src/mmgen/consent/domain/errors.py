"""Domain exceptions of the consent service; the HTTP edge maps them to problem+json in one place.

Messages become the problem's `detail`: they name ids and purposes, never personal values.
"""

from __future__ import annotations


class ConsentError(Exception):
    """Root of every consent-service exception."""


class PurposeUnknownError(ConsentError):
    """No purpose with this id in the catalogue (404)."""

    def __init__(self, purpose: str) -> None:
        super().__init__(f"no purpose {purpose!r} in the catalogue")
        self.purpose = purpose


class PurposeNotConsentBasedError(ConsentError):
    """The purpose rests on another legal basis (contract, legal obligation): no consent to give."""

    def __init__(self, purpose: str, legal_basis: str) -> None:
        super().__init__(
            f"purpose {purpose!r} rests on {legal_basis}, not on consent; it cannot be granted "
            "or withdrawn"
        )


class PolicyVersionUnknownError(ConsentError):
    """A consent names a policy version that was never published (422)."""

    def __init__(self, version: str) -> None:
        super().__init__(f"policy version {version!r} is not a published version")


class PolicyVersionExistsError(ConsentError):
    """A policy version is published once; its text never changes afterwards (409)."""

    def __init__(self, version: str) -> None:
        super().__init__(f"policy version {version!r} is already published")


class NoCurrentPolicyError(ConsentError):
    """No published policy has reached its effective date yet (404)."""

    def __init__(self) -> None:
        super().__init__("no published policy is in effect yet")


class PolicyNotFoundError(ConsentError):
    """No policy with this version (404)."""

    def __init__(self, version: str) -> None:
        super().__init__(f"no policy version {version!r}")


class SubjectErasedError(ConsentError):
    """The subject was erased: nothing new is recorded for them (410)."""

    def __init__(self) -> None:
        super().__init__("the subject's data was erased; nothing more is recorded for them")


class ConsentConflictError(ConsentError):
    """Concurrent changes of one subject's consents kept conflicting (409, retry)."""

    def __init__(self) -> None:
        super().__init__("the subject's consents changed concurrently; retry the request")
