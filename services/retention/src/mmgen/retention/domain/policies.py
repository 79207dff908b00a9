"""Retention policies: how long a category of data is kept after a trigger, and what happens then.

A policy is ``{category, trigger_event, period, action, legal_basis}``:

- ``trigger_event`` is an event type as it appears in the audit log (``projects.ProjectCompleted``,
  ``identity.AccountClosed``) or ``subject.inactive``, the subject's last own activity (the last
  audit entry the subject caused, refusals excluded);
- ``period`` an ISO 8601 duration (``periods.RetentionPeriod``: ``P3Y``, ``P6M``, ``P30D``);
- ``action`` ``erase`` acts on the **subject** of the trigger with ``retention.EraseSubject``.
  For the category ``account`` it erases the whole subject (everything not under a legal hold);
  for any other category it erases that category only, by holding every other one
  (``categories_held`` = all categories but the ones due), and only for subjects whose audit
  entries show data of that category. ``anonymize`` acts on the **resource** the trigger event
  touched (its audit entry's ``resource``) with ``retention.AnonymizeResource``.
  ``subject.inactive`` names no resource, so it only goes with ``erase``;
- ``legal_basis`` why the data is kept that long (shown in every access package, Art. 15(1)(d)).

One policy per (category, trigger_event, action): defining it again replaces the period.

The defaults (``DEFAULT_POLICIES``) are deliberately few and named after what the privacy
policy says ("we retain data only as long as necessary"):

- ``project``, ``projects.ProjectCompleted``, ``P3Y``, anonymize: claims under a completed
  project are time-barred after the usual three-year limitation period; the project's facts
  (status, dates, budget band) stay for statistics;
- ``project``, ``projects.ProjectCancelled``, ``P1Y``, anonymize: a cancelled project needs
  its data for disputes for a shorter time;
- ``account``, ``identity.AccountClosed``, ``P30D``, erase: a closed account is erased after
  a 30-day grace period in which closing it by mistake can be undone;
- ``account``, ``subject.inactive``, ``P3Y``, erase: an account unused for three years is no
  longer "necessary";
- ``usage``, ``subject.inactive``, ``P13M``, erase: analytics data only, after 13 months
  (the CNIL's guidance for audience measurement); the account stays.

The project triggers need the projects service to record completion and cancellation as
events of their own types: an audit entry names the event type but carries no data, so a
generic ``ProjectStatusChanged`` cannot tell a completion from any other change.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from enum import StrEnum

from mmgen.events.envelope import EVENT_TYPE_PATTERN
from mmgen.events.registry import KNOWN_CATEGORIES
from mmgen.retention.domain.activity import INACTIVE_TRIGGER
from mmgen.retention.domain.errors import PolicyInvalidError
from mmgen.retention.domain.periods import RetentionPeriod

SUBJECT_INACTIVE = INACTIVE_TRIGGER
#: The category whose erase policy erases the whole subject.
WHOLE_SUBJECT = "account"
_EVENT_TYPE = re.compile(EVENT_TYPE_PATTERN)
_POLICY_NAMESPACE = uuid.UUID("3f1d1b7e-6c55-4c59-9a8e-6d2f3f0a9b21")


class PolicyAction(StrEnum):
    erase = "erase"
    anonymize = "anonymize"


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """One rule, validated on construction."""

    category: str
    trigger_event: str
    period: RetentionPeriod
    action: PolicyAction
    legal_basis: str

    def __post_init__(self) -> None:
        if self.category not in KNOWN_CATEGORIES:
            raise PolicyInvalidError(
                f"unknown category {self.category!r}; known: {sorted(KNOWN_CATEGORIES)}"
            )
        if self.trigger_event != SUBJECT_INACTIVE and not _EVENT_TYPE.fullmatch(self.trigger_event):
            raise PolicyInvalidError(
                f"trigger_event {self.trigger_event!r} is neither an event type "
                f"(<service>.<EventName>) nor {SUBJECT_INACTIVE!r}"
            )
        if self.trigger_event == SUBJECT_INACTIVE and self.action is not PolicyAction.erase:
            raise PolicyInvalidError(
                f"{SUBJECT_INACTIVE!r} names no resource to anonymise; use action 'erase'"
            )
        basis = self.legal_basis.strip()
        if not basis or len(basis) > 500:
            raise PolicyInvalidError("a policy needs its legal basis (at most 500 characters)")

    @classmethod
    def of(
        cls, *, category: str, trigger_event: str, period: str, action: str, legal_basis: str
    ) -> RetentionPolicy:
        try:
            kind = PolicyAction(action)
        except ValueError:
            raise PolicyInvalidError(
                f"action must be 'erase' or 'anonymize', not {action!r}"
            ) from None
        return cls(category, trigger_event, RetentionPeriod.parse(period), kind, legal_basis)

    @property
    def policy_id(self) -> str:
        """Stable per (category, trigger, action): redefining a policy replaces it."""
        key = f"{self.category}|{self.trigger_event}|{self.action.value}"
        return str(uuid.uuid5(_POLICY_NAMESPACE, key))

    @property
    def targets_subjects(self) -> bool:
        return self.action is PolicyAction.erase

    @property
    def erases_whole_subject(self) -> bool:
        return self.action is PolicyAction.erase and self.category == WHOLE_SUBJECT

    def to_json(self) -> dict[str, str]:
        return {
            "policy_id": self.policy_id,
            "category": self.category,
            "trigger_event": self.trigger_event,
            "period": str(self.period),
            "action": self.action.value,
            "legal_basis": self.legal_basis,
        }


DEFAULT_POLICIES: tuple[RetentionPolicy, ...] = (
    RetentionPolicy.of(
        category="project",
        trigger_event="projects.ProjectCompleted",
        period="P3Y",
        action="anonymize",
        legal_basis=(
            "GDPR Art. 5(1)(e) storage limitation; kept under Art. 6(1)(b) and (f) until claims "
            "under the completed project are time-barred (three-year limitation period)"
        ),
    ),
    RetentionPolicy.of(
        category="project",
        trigger_event="projects.ProjectCancelled",
        period="P1Y",
        action="anonymize",
        legal_basis="GDPR Art. 5(1)(e); Art. 6(1)(f) defence of claims about a cancelled project",
    ),
    RetentionPolicy.of(
        category="account",
        trigger_event="identity.AccountClosed",
        period="P30D",
        action="erase",
        legal_basis="GDPR Art. 17(1)(a); a 30-day grace period to undo a mistaken closure",
    ),
    RetentionPolicy.of(
        category="account",
        trigger_event=SUBJECT_INACTIVE,
        period="P3Y",
        action="erase",
        legal_basis="GDPR Art. 5(1)(e): an account unused for three years is no longer necessary",
    ),
    RetentionPolicy.of(
        category="usage",
        trigger_event=SUBJECT_INACTIVE,
        period="P13M",
        action="erase",
        legal_basis="GDPR Art. 5(1)(e); ePrivacy consent for analytics, kept at most 13 months",
    ),
)
