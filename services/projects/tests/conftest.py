"""Fixtures of the projects service's tests, on the runtime's testing kit.

API tests run the real app in-process through httpx with its lifespan (topics, relay, inbox,
projection, sweeper) against the session's real database and broker. An app starts once per
test module, in a database, under a topic prefix and with an inbox group of its own; tests in
a module share it, so each makes its own people and projects and never counts what others
stored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mmgen.projects.settings import ProjectsSettings
from mmgen.runtime.testing import Tokens, service_settings


@pytest.fixture(scope="session")
def tokens() -> Tokens:
    return Tokens.generate()


@pytest.fixture(scope="session")
def projects_settings(infra: Any) -> Callable[..., ProjectsSettings]:
    """Settings of one app under test: own database, topic prefix and inbox group."""

    def make(**overrides: Any) -> ProjectsSettings:
        settings = service_settings(ProjectsSettings, infra, **overrides)
        return settings.model_copy(
            update={"consumer_group": f"{settings.topic_prefix}projects-inbox"}
        )

    return make
