"""The app of an API test module (one per module) and the `api` helpers on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
import pytest_asyncio

from mmgen.platform import PlatformApp
from mmgen.projects.entrypoints.app import build_app
from mmgen.projects.settings import ProjectsSettings
from mmgen.runtime.testing import Tokens, running_app
from services.projects.tests.projects_kit import Api

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def settings(projects_settings: Callable[..., ProjectsSettings]) -> ProjectsSettings:
    """A file limit above the platform's 1 MiB body limit: the upload route's own applies."""
    return projects_settings(max_file_bytes=3 * MIB, file_chunk_bytes=64 * 1024)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(
    settings: ProjectsSettings, tokens: Tokens
) -> AsyncIterator[tuple[PlatformApp, httpx.AsyncClient]]:
    async with running_app(build_app(settings, key_set=tokens.key_set())) as pair:
        yield pair


@pytest.fixture(scope="module")
def app(running: tuple[PlatformApp, httpx.AsyncClient]) -> PlatformApp:
    return running[0]


@pytest.fixture(scope="module")
def client(running: tuple[PlatformApp, httpx.AsyncClient]) -> httpx.AsyncClient:
    return running[1]


@pytest.fixture(scope="module")
def api(app: PlatformApp, client: httpx.AsyncClient, tokens: Tokens) -> Api:
    return Api(client, tokens, app.state.projects)
