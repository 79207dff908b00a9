"""The purposes catalogue: what the service processes personal data for, and on which basis.

The catalogue is code, not data: adding a purpose is a reviewed change, like the privacy policy
it mirrors. Purposes whose legal basis is `consent` can be granted and withdrawn; the others
(the processing purposes staff declare with `X-Purpose`) are listed for transparency only.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mmgen.consent.domain.errors import PurposeNotConsentBasedError, PurposeUnknownError


class LegalBasis(StrEnum):
    """GDPR Art. 6(1) bases the policy relies on."""

    consent = "consent"
    contract = "contract"
    legal_obligation = "legal_obligation"
    legitimate_interests = "legitimate_interests"


@dataclass(frozen=True)
class Purpose:
    """One processing purpose as shown to users (`GET /purposes`)."""

    id: str
    legal_basis: LegalBasis
    description: str
    data_categories: tuple[str, ...]
    #: Event categories a consent event about this purpose carries (for the audit log).
    event_categories: tuple[str, ...] = ("consent",)

    @property
    def consent_based(self) -> bool:
        return self.legal_basis is LegalBasis.consent


COOKIES_ANALYTICS = "cookies.analytics"
PROFILE_SENSITIVE_SHARING = "profile.sensitive_sharing"
MARKETING_EMAIL = "marketing.email"
DATA_SALE_SHARING = "data.sale_sharing"

#: Purposes a `Sec-GPC: 1` signal refuses (CCPA "do not sell or share", and tracking).
GPC_REFUSED: tuple[str, ...] = (DATA_SALE_SHARING, COOKIES_ANALYTICS)

CATALOGUE: dict[str, Purpose] = {
    p.id: p
    for p in (
        Purpose(
            COOKIES_ANALYTICS,
            LegalBasis.consent,
            "Analytics cookies and usage events, to understand how the product is used.",
            ("usage",),
            ("consent", "usage"),
        ),
        Purpose(
            PROFILE_SENSITIVE_SHARING,
            LegalBasis.consent,
            "Showing a creator's sensitive profile fields (phone, email, date of birth, "
            "address, measurements) to clients selecting creators.",
            ("sensitive", "contact"),
            ("consent", "sensitive"),
        ),
        Purpose(
            MARKETING_EMAIL,
            LegalBasis.consent,
            "Marketing emails about the marketplace.",
            ("contact",),
            ("consent", "contact"),
        ),
        Purpose(
            DATA_SALE_SHARING,
            LegalBasis.consent,
            "Sale or sharing of personal data with third parties beyond project execution, "
            "legal compliance and payment processing. The product does not sell data; this "
            "records the subject's choice (and Global Privacy Control signals).",
            ("contact", "business", "usage"),
            ("consent",),
        ),
        Purpose(
            "project_execution",
            LegalBasis.contract,
            "Running the projects a client and creators agreed on: requirements, messages, "
            "files, membership.",
            ("contact", "business", "project", "communication", "files", "portfolio"),
        ),
        Purpose(
            "support",
            LegalBasis.legitimate_interests,
            "Helping users who ask for support.",
            ("contact", "account", "project"),
        ),
        Purpose(
            "legal_compliance",
            LegalBasis.legal_obligation,
            "Meeting legal obligations: privacy requests, tax and accounting, authorities.",
            ("contact", "business", "account", "consent"),
        ),
        Purpose(
            "payment_processing",
            LegalBasis.contract,
            "Processing payments between clients and creators.",
            ("contact", "business", "payment"),
        ),
        Purpose(
            "security",
            LegalBasis.legitimate_interests,
            "Protecting accounts and the platform against abuse.",
            ("account", "security", "usage"),
        ),
    )
}


def purpose(purpose_id: str) -> Purpose:
    """The catalogue entry, or `PurposeUnknownError`."""
    try:
        return CATALOGUE[purpose_id]
    except KeyError:
        raise PurposeUnknownError(purpose_id) from None


def consentable(purpose_id: str) -> Purpose:
    """A purpose that consent can be given for (known, legal basis `consent`)."""
    found = purpose(purpose_id)
    if not found.consent_based:
        raise PurposeNotConsentBasedError(found.id, found.legal_basis.value)
    return found
