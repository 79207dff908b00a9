"""`/projects/{project_id}/disclosures`: record a permitted sharing, refuse any other.

A purpose the policy does not permit (sale, marketing, advertising, ...) reaches the use case
(the schema leaves it free text on purpose), which refuses it with its own problem type and
audits the refusal.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from mmgen.projects.entrypoints.api.dependencies import CurrentCaller, Service
from mmgen.projects.entrypoints.api.schemas import DisclosureIn, DisclosureOut


def router() -> APIRouter:
    api = APIRouter(prefix="/projects/{project_id}/disclosures", tags=["disclosures"])

    @api.post(
        "",
        name="create_disclosure",
        status_code=status.HTTP_201_CREATED,
        response_model=DisclosureOut,
    )
    async def create_disclosure(
        project_id: uuid.UUID, body: DisclosureIn, caller: CurrentCaller, svc: Service
    ) -> DisclosureOut:
        """Record that personal data of the project's people was shared (the owner): one
        `share` event per subject concerned."""
        view = await svc.disclosures.create(
            caller,
            str(project_id),
            recipient=body.recipient,
            purpose=body.purpose,
            legal_basis=body.legal_basis,
            categories=body.categories,
            subject_ids=[str(s) for s in body.subject_ids],
        )
        return DisclosureOut.of(view)

    return api
