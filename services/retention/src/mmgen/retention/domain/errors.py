"""Domain exceptions of the retention service; the HTTP edge maps them to problem+json in one place.

Messages become the problem's `detail`: they name ids, statuses and categories, never personal
values. The status each one is meant to map to is noted on the class.
"""

from __future__ import annotations


class RetentionError(Exception):
    """Root of every retention-service exception."""


class PeriodInvalidError(RetentionError, ValueError):
    """A retention period is not an ISO 8601 duration this service accepts (422)."""


class PolicyInvalidError(RetentionError, ValueError):
    """A retention policy is inconsistent: unknown category, trigger or action for it (422)."""


class ExtensionInvalidError(RetentionError, ValueError):
    """A deadline extension breaks GDPR Art. 12(3): no reason, too long, twice, too late (422)."""


class RequestInvalidError(RetentionError, ValueError):
    """A request step's text is missing or too long (details, resolution note, reason) (422)."""


class IllegalTransitionError(RetentionError):
    """The request's status does not allow this step (409)."""

    def __init__(self, request_id: str, current: str, wanted: str) -> None:
        super().__init__(f"privacy request {request_id} is {current}; it cannot become {wanted}")
        self.current, self.wanted = current, wanted


class RequestTypeMismatchError(RetentionError):
    """The step belongs to another type of request (an erasure step on an access request) (409)."""


class PrivacyRequestNotFoundError(RetentionError):
    """No privacy request with this id, or none the caller may see (404)."""

    def __init__(self, request_id: str) -> None:
        super().__init__(f"no privacy request {request_id}")
        self.request_id = request_id


class HoldNotFoundError(RetentionError):
    """No legal hold with this id (404)."""

    def __init__(self, hold_id: str) -> None:
        super().__init__(f"no legal hold {hold_id}")
        self.hold_id = hold_id


class HoldInvalidError(RetentionError, ValueError):
    """A legal hold without categories, basis or owner, or one ending in the past (422)."""


class HoldAlreadyReleasedError(RetentionError):
    """The hold was released before (409)."""


class PackageNotReadyError(RetentionError):
    """The access package is not assembled yet (409)."""


class PackageExpiredError(RetentionError):
    """The access package expired and was deleted (410)."""


class ReceiptNotAvailableError(RetentionError):
    """Only a `verified` erasure has a receipt, and only once a signed head covers it (409)."""


class SecondFactorNeededError(RetentionError):
    """The email and password are right, but the account has TOTP and no one-time code (or
    recovery code) came with them: identity signs it in only with one (401 `mfa-required`)."""


class ServiceUnreachableError(RetentionError):
    """Another service's internal endpoint did not answer usefully (the step is retried)."""

    def __init__(self, service: str, reason: str) -> None:
        super().__init__(f"service {service} did not answer: {reason}")
        self.service, self.reason = service, reason
