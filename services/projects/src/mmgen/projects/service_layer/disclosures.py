"""Disclosures: recording that personal data of a project's people was shared, and refusing
any sharing the privacy policy does not permit.

"We do not sell personal data": a disclosure is accepted only for project execution, legal
compliance or payment processing. Any other purpose — sale, marketing, advertising, anything —
is refused with its own error and the refusal is audited. An accepted disclosure is one
`share` event per subject concerned, so each subject's Art. 15 report names the recipient,
the purpose and the legal basis.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mmgen.events.ids import new_event_id
from mmgen.events.mapper import NewEvent
from mmgen.events.repository import EventSourcedRepository
from mmgen.projects.adapters.ports import DisclosuresIndex
from mmgen.projects.adapters.projection import disclosure_row
from mmgen.projects.domain.access import Operation
from mmgen.projects.domain.errors import (
    DisclosurePurposeRefusedError,
    DisclosureSubjectNotInProjectError,
)
from mmgen.projects.domain.events import (
    DISCLOSURE_PURPOSES,
    DataDisclosed,
    LegalBasis,
    Recipient,
)
from mmgen.projects.service_layer.caller import Caller
from mmgen.projects.service_layer.gate import AccessGate
from mmgen.projects.service_layer.views import DisclosureView

PURPOSE_REFUSED = "disclosure_purpose_refused"


class DisclosureUseCases:
    def __init__(
        self,
        repo: EventSourcedRepository,
        gate: AccessGate,
        disclosures: DisclosuresIndex,
        *,
        new_id: Callable[[], str] = new_event_id,
    ) -> None:
        self.repo = repo
        self.gate = gate
        self.disclosures = disclosures
        self.new_id = new_id

    async def create(
        self,
        caller: Caller,
        project_id: str,
        *,
        recipient: Recipient,
        purpose: str,
        legal_basis: LegalBasis,
        categories: Sequence[str],
        subject_ids: Sequence[str],
    ) -> DisclosureView:
        admitted = await self.gate.enter(caller, project_id, Operation.create_disclosure)
        if purpose not in DISCLOSURE_PURPOSES:
            await self.gate.refuse(
                caller, project_id, Operation.create_disclosure, PURPOSE_REFUSED, status=422
            )
            raise DisclosurePurposeRefusedError(purpose, DISCLOSURE_PURPOSES)
        subjects = list(dict.fromkeys(subject_ids))
        if not set(subjects) <= set(admitted.row.member_ids):
            raise DisclosureSubjectNotInProjectError()
        cats = list(dict.fromkeys(categories))
        disclosure_id = self.new_id()
        data = DataDisclosed(
            disclosure_id=disclosure_id,
            project_id=project_id,
            recipient=recipient,
            purpose=purpose,
            legal_basis=legal_basis,
            categories=cats,
            subject_ids=subjects,
        )
        stored = await self.repo.append(
            f"disclosure:{disclosure_id}",
            0,
            [
                NewEvent(
                    data,
                    subject_id=subject,
                    actor=caller.actor(),
                    purpose=purpose,
                    resource_id=disclosure_id,
                    categories=tuple(cats),
                )
                for subject in subjects
            ],
        )
        await self.disclosures.add(disclosure_row(stored[0].envelope, data))
        return DisclosureView(
            disclosure_id=disclosure_id,
            project_id=project_id,
            recipient=recipient,
            purpose=purpose,
            legal_basis=legal_basis,
            categories=cats,
            subject_ids=subjects,
            disclosed_at=stored[0].occurred_at,
        )
