"""Fixtures of the consent service's tests, on the runtime's testing kit.

API tests run the real app in-process through httpx with its lifespan (topics, relay, inbox,
projector, audit log) against the session's real database and broker. An app starts once per
test module (`running`), in a database and under a topic prefix of its own; tests in a module
share it, so they name their own subjects and policy versions and never count what others
stored. A test that needs an app of its own (restarts) makes its settings with
`consent_settings()`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mmgen.consent.settings import ConsentSettings
from mmgen.runtime.testing import Tokens, service_settings


def _consent_settings(infra: Any, **overrides: Any) -> ConsentSettings:
    settings = service_settings(
        ConsentSettings,
        infra,
        tracking_max_events_per_subject=5,
        audit_checkpoint_every_seconds=1.0,
        audit_gap_repair_delay_seconds=1.0,
        **overrides,
    )
    prefix = settings.topic_prefix
    return settings.model_copy(
        update={
            "consumer_group": f"{prefix}consent-inbox",
            "audit_consumer_group": f"{prefix}consent-audit",
        }
    )


@pytest.fixture(scope="session")
def tokens() -> Tokens:
    return Tokens.generate()


@pytest.fixture(scope="session")
def consent_settings(infra: Any) -> Callable[..., ConsentSettings]:
    """Settings of one app under test: own database, topic prefix and consumer groups."""

    def make(**overrides: Any) -> ConsentSettings:
        return _consent_settings(infra, **overrides)

    return make
