"""A 100 MiB upload and its download over real HTTP (uvicorn in this process): the content
comes back intact, and neither direction grows the process's traced memory by 50 MiB — the
body is streamed through the multipart reader, sealed and stored a chunk at a time, and read
back a window of chunks at a time."""

from __future__ import annotations

import asyncio
import hashlib
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import uvicorn
from pymongo import AsyncMongoClient

from mmgen.localstack.ports import free_port
from mmgen.projects.entrypoints.app import build_app
from mmgen.projects.settings import ProjectsSettings
from mmgen.projects.testing import (
    SAMPLES,
    generated,
    multipart_headers,
    multipart_stream,
)
from mmgen.runtime.testing import Tokens

MIB = 1024 * 1024
SIZE = 100 * MIB
GROWTH_LIMIT = 50 * MIB


async def _hashing(data: AsyncIterator[bytes], digest: Any) -> AsyncIterator[bytes]:
    async for piece in data:
        digest.update(piece)
        yield piece


@pytest.mark.slow
async def test_a_100_mib_upload_and_download_stay_under_50_mib_of_memory_growth(
    projects_settings: Callable[..., ProjectsSettings], tokens: Tokens, record_property: Any
) -> None:
    settings = projects_settings(max_file_bytes=SIZE + MIB)
    app = build_app(settings, key_set=tokens.key_set())
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, lifespan="on", log_config=None, access_log=False
        )
    )
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not serving.done(), "the server did not start"
            await asyncio.sleep(0.05)
        service = app.state.projects
        owner, reader = str(uuid.uuid4()), str(uuid.uuid4())
        await service.known_users.register(reader, "creator")
        _, owner_headers = tokens.headers("client", owner)
        _, reader_headers = tokens.headers("creator", reader)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
            created = await http.post(
                "/projects", headers=owner_headers, json={"title": "Film", "requirements": "4K"}
            )
            project_id = created.json()["project_id"]
            added = await http.post(
                f"/projects/{project_id}/members",
                headers=owner_headers,
                json={"user_id": reader, "role": "creator"},
            )
            assert added.status_code == 201, added.text

            tracemalloc.start()
            try:
                sent = hashlib.sha256()
                body = multipart_stream(
                    "cut.mp4",
                    "video/mp4",
                    _hashing(generated(SIZE, head=SAMPLES["video/mp4"][:32]), sent),
                )
                base = tracemalloc.get_traced_memory()[0]
                tracemalloc.reset_peak()
                uploaded = await http.post(
                    f"/projects/{project_id}/files",
                    headers={**owner_headers, **multipart_headers()},
                    content=body,
                )
                upload_growth = tracemalloc.get_traced_memory()[1] - base
                assert uploaded.status_code == 201, uploaded.text
                assert uploaded.json()["size"] == SIZE

                received = hashlib.sha256()
                size = 0
                base = tracemalloc.get_traced_memory()[0]
                tracemalloc.reset_peak()
                async with http.stream(
                    "GET",
                    f"/projects/{project_id}/files/{uploaded.json()['file_id']}",
                    headers=reader_headers,
                ) as download:
                    assert download.status_code == 200
                    async for piece in download.aiter_raw():
                        received.update(piece)
                        size += len(piece)
                download_growth = tracemalloc.get_traced_memory()[1] - base
            finally:
                tracemalloc.stop()
        record_property("upload growth MiB", round(upload_growth / MIB, 2))
        record_property("download growth MiB", round(download_growth / MIB, 2))
        assert size == SIZE
        assert received.digest() == sent.digest()
        assert upload_growth < GROWTH_LIMIT, f"upload grew {upload_growth / MIB:.1f} MiB"
        assert download_growth < GROWTH_LIMIT, f"download grew {download_growth / MIB:.1f} MiB"
    finally:
        server.should_exit = True
        await serving
        mongo: Any = AsyncMongoClient(settings.mongo_uri)
        try:
            await mongo.drop_database(settings.mongo_database)
        finally:
            await mongo.close()
