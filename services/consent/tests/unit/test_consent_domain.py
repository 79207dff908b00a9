"""Unit tests of the consent domain (aggregate, purposes, policy hash) over the in-memory kernel."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from mmgen.consent.domain.errors import PurposeNotConsentBasedError, PurposeUnknownError
from mmgen.consent.domain.events import ConsentEvidence, consent_registry
from mmgen.consent.domain.model import SubjectConsents, consent_stream
from mmgen.consent.domain.purposes import CATALOGUE, GPC_REFUSED, consentable
from mmgen.consent.service_layer.consents import policy_hash
from mmgen.events.envelope import Actor
from mmgen.events.erased import is_erased
from mmgen.events.kernel import EventKernel, in_memory_kernel


def kernel() -> EventKernel:
    return in_memory_kernel(producer="consent", registry=consent_registry())


def decide(agg: SubjectConsents, subject: str, purpose: str, granted: bool, method="explicit"):
    return agg.decide(
        subject_id=subject,
        purpose=purpose,
        granted=granted,
        policy_version="v1",
        method=method,
        actor=Actor(id=subject, role="client"),
        evidence=ConsentEvidence(user_agent="UA", client_ip="10.0.0.1"),
    )


def test_catalogue_and_consentable_purposes() -> None:
    assert set(GPC_REFUSED) == {"data.sale_sharing", "cookies.analytics"}
    assert all(CATALOGUE[p].consent_based for p in GPC_REFUSED)
    assert consentable("marketing.email").id == "marketing.email"
    with pytest.raises(PurposeUnknownError):
        consentable("cookies.nope")
    with pytest.raises(PurposeNotConsentBasedError):
        consentable("payment_processing")


def test_policy_hash_is_sha256_of_utf8_text() -> None:
    text = "Politique de confidentialité"
    assert policy_hash(text) == hashlib.sha256(text.encode("utf-8")).hexdigest()


async def test_fold_grants_and_withdrawals_and_skip_repeats() -> None:
    repository = kernel().repository
    subject = str(uuid.uuid4())
    agg = SubjectConsents(consent_stream(subject))
    assert decide(agg, subject, "marketing.email", True)
    assert not decide(agg, subject, "marketing.email", True)  # same decision: nothing new
    assert decide(agg, subject, "cookies.analytics", True)
    assert decide(agg, subject, "cookies.analytics", False, method="gpc")
    stored = await repository.save(agg)
    assert [e.event_type for e in stored] == [
        "consent.ConsentGranted",
        "consent.ConsentGranted",
        "consent.ConsentWithdrawn",
    ]
    loaded = await repository.get(SubjectConsents, consent_stream(subject))
    assert loaded is not None and loaded.version == 3
    assert loaded.is_granted("marketing.email")
    assert loaded.is_withdrawn("cookies.analytics")
    assert loaded.states["cookies.analytics"].method == "gpc"
    assert loaded.states["cookies.analytics"].decided_at == stored[2].occurred_at


async def test_consent_events_carry_purpose_categories_and_encrypted_evidence() -> None:
    k = kernel()
    subject = str(uuid.uuid4())
    agg = SubjectConsents(consent_stream(subject))
    decide(agg, subject, "profile.sensitive_sharing", True)
    decide(agg, subject, "data.sale_sharing", True)
    sensitive, sale = await k.repository.save(agg)
    assert sensitive.envelope.categories == ("consent", "sensitive")
    assert sale.envelope.categories == ("consent",)
    assert sensitive.envelope.action == "consent"
    assert sensitive.envelope.pii is not None and b"UA" not in sensitive.envelope.to_wire()
    # Shredding the subject's key erases the evidence; the fold still works.
    await k.keystore.shred(f"subject:{subject}")
    reloaded = await k.repository.load(consent_stream(subject))
    assert all(is_erased(e.personal) for e in reloaded)
    again = await k.repository.get(SubjectConsents, consent_stream(subject))
    assert again is not None and again.is_granted("profile.sensitive_sharing")
