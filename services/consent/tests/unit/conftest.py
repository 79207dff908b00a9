"""Unit-test fixtures: the consent service wired by its own bootstrap over in-memory fakes."""

from __future__ import annotations

import pytest

from mmgen.consent.bootstrap import Consent, bootstrap
from mmgen.consent.domain.events import consent_registry
from mmgen.consent.settings import ConsentSettings
from mmgen.events.kernel import in_memory_kernel
from mmgen.runtime.testing import command_key_settings


def in_memory_consent(**settings: object) -> Consent:
    """`bootstrap` over the kernel's in-memory store and keystore and `InMemory*` read models."""
    return bootstrap(
        ConsentSettings(environment="test", jwks_url=None, **command_key_settings(), **settings),
        kernel=in_memory_kernel(producer="consent", registry=consent_registry()),
    )


@pytest.fixture
def consent() -> Consent:
    return in_memory_consent(tracking_max_events_per_subject=3)
